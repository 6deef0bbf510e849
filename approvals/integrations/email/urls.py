from django.urls import path

from approvals.integrations.email.views import email_decide, email_inbound

urlpatterns = [
    path("email/decide/<str:token>/", email_decide, name="email_decide"),
    path("email/inbound/", email_inbound, name="email_inbound"),
]
