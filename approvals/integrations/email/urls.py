from django.urls import path

from approvals.integrations.email.views import email_decide

urlpatterns = [
    path("email/decide/<str:token>/", email_decide, name="email_decide"),
]
