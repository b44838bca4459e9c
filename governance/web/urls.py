"""/governance/ — the governance board's screens (namespace ``govweb``)."""

from django.urls import URLPattern, path

from governance.web import views

app_name = "govweb"
urlpatterns: list[URLPattern] = [
    path("policies/", views.PolicyListView.as_view(), name="policies"),
    path("policies/<int:pk>/", views.PolicyDetailView.as_view(), name="policy-detail"),
    path("policies/<int:pk>/edit/", views.PolicyEditView.as_view(), name="policy-edit"),
    path("policies/<int:pk>/rules/", views.PolicyRulesView.as_view(), name="policy-rules"),
    path("policies/<int:pk>/diff/", views.PolicyDiffView.as_view(), name="policy-diff"),
    path("policies/<int:pk>/preview/", views.PolicyPreviewView.as_view(), name="policy-preview"),
    path("policies/<int:pk>/submit/", views.PolicySubmitView.as_view(), name="policy-submit"),
    path("policies/<int:pk>/decide/", views.PolicyDecideView.as_view(), name="policy-decide"),
    path("policies/<int:pk>/publish/", views.PolicyPublishView.as_view(), name="policy-publish"),
    path("policies/<int:pk>/redraft/", views.PolicyRedraftView.as_view(), name="policy-redraft"),
    path("erasure/", views.ErasureListView.as_view(), name="erasure"),
    path("erasure/<uuid:pk>/", views.ErasureDetailView.as_view(), name="erasure-detail"),
    path("erasure/<uuid:pk>/approve/", views.ErasureApproveView.as_view(), name="erasure-approve"),
    path("erasure/<uuid:pk>/execute/", views.ErasureExecuteView.as_view(), name="erasure-execute"),
    path("erasure/<uuid:pk>/reject/", views.ErasureRejectView.as_view(), name="erasure-reject"),
    path("erasure/<uuid:pk>/resend/", views.ErasureResendView.as_view(), name="erasure-resend"),
    path("audit/", views.AuditListView.as_view(), name="audit"),
    path("audit/export/", views.AuditExportView.as_view(), name="audit-export"),
    path("audit/verify/", views.AuditVerifyView.as_view(), name="audit-verify"),
    path("retention/", views.RetentionListView.as_view(), name="retention"),
    path("retention/<int:pk>/", views.RetentionDetailView.as_view(), name="retention-detail"),
]
