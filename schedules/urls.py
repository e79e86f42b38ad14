from django.urls import path

from schedules import views

urlpatterns = [
    path("workspaces/<str:workspace_id>/schedules", views.WorkspaceSchedulesApi.as_view()),
    path("workspaces/<str:workspace_id>/schedules/health", views.WorkspaceScheduleHealthApi.as_view()),
    path("workspaces/<str:workspace_id>/schedules/<str:schedule_id>", views.WorkspaceScheduleApi.as_view()),
    path("workspaces/<str:workspace_id>/schedules/<str:schedule_id>/run", views.WorkspaceScheduleRunApi.as_view()),
    path("workspaces/<str:workspace_id>/schedules/<str:schedule_id>/history",
         views.WorkspaceScheduleHistoryApi.as_view()),
    path("admin/schedules/health", views.AdminSchedulesHealthApi.as_view()),
]
