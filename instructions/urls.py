from django.urls import path

from instructions import views

urlpatterns = [
    path("instructions", views.InstructionCollectionApi.as_view()),
    path("instructions/<str:instruction_id>", views.InstructionItemApi.as_view()),
    path("workspaces/<str:workspace_id>/instructions/resolve", views.InstructionsResolveApi.as_view()),
]
