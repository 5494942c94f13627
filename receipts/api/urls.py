"""Receipts API v1 URLs, mounted at ``/api/v1/`` (namespace ``receipts_api``).

The original PBTS paths (``/register``, ``/report``, ``/report/<id>``, ``/attest``,
``/keygen``) are wired to the same views in ``pbts_site/urls.py``.
"""

from django.urls import path

from receipts.api import views

app_name = "receipts_api"

urlpatterns = [
    path("receipts/config/", views.ReceiptConfigView.as_view(), name="config"),
    path("keys/", views.KeyListCreateView.as_view(), name="key-list"),
    path("reports/", views.ReportListCreateView.as_view(), name="report-list"),
    path("reports/<int:pk>/", views.ReportDetailView.as_view(), name="report-detail"),
]
