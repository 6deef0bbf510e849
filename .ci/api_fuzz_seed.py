# Run by .ci/run with `manage.py shell -c`: requests on the demo workflows for the API fuzzing
# to find, and an API token for the demo admin, printed last.
from django.utils import timezone

from accounts.models import User
from approvals.services.api_tokens import token_create
from approvals.services.instances import instance_start

now = timezone.now()
alice = User.objects.get(username="alice")
admin = User.objects.get(username="admin")
requests = [
    (
        "purchase-order",
        {"title": "Chair", "amount": 120, "justification": "Back pain", "currency": "EUR"},
    ),
    (
        "purchase-order",
        {"title": "Laptop", "amount": 2400, "justification": "Old one broke", "currency": "EUR"},
    ),
    (
        "purchase-order",
        {"title": "Servers", "amount": 48000, "justification": "Capacity", "currency": "USD"},
    ),
    (
        "access-request",
        {
            "system": "github",
            "access_level": "read",
            "reason": "Review the API",
            "until": "2027-01-01",
        },
    ),
    ("order-fulfillment", {"customer": "ACME", "items": 3, "address": "1 Main Street"}),
]
for key, context in requests:
    instance_start(definition_key=key, context=context, actor=alice, now=now)
print(token_create(user=admin, name=f"api-fuzz {now:%Y%m%d%H%M%S}", actor=admin, now=now)[1])
