"""Event log routes (spec §14): the last 100 structure events, newest first."""

from rest_framework.response import Response

from activity.models import StructureEvent
from molecule_site.api import Api, parse_uuid
from molecule_site.wire import rfc3339
from registry.auth import AdminAuth

EVENTS_PAGE = 100


def _event_item(event: StructureEvent) -> dict:
    return {
        "id": str(event.id),
        "event_type": event.event_type,
        "workspace_id": str(event.workspace_id) if event.workspace_id else None,
        "payload": event.payload,
        "created_at": rfc3339(event.created_at),
    }


class EventsApi(Api):
    auth_by_method = {"GET": (AdminAuth,)}

    def get(self, request, workspace_id=None):
        events = StructureEvent.objects.order_by("-created_at")
        if workspace_id is not None:
            events = events.filter(workspace_id=parse_uuid(workspace_id))
        return Response([_event_item(e) for e in events[:EVENTS_PAGE]])
