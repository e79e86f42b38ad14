"""Secret routes (spec §12). Thin: parse, call a selector or service, shape the answer.

List routes answer metadata only; the one route that returns values (``/secrets/values``) also
applies the in-handler re-check of spec §2.3.
"""

from __future__ import annotations

from rest_framework.response import Response

from molecule_site.api import Api, json_body, parse_uuid
from molecule_site.errors import ApiError
from registry import auth
from registry.auth import AdminAuth, WorkspaceAuth
from secrets_app import selectors, services
from secrets_app.crypto import DecryptionError

INVALID_BODY = "invalid request body"
GLOBAL = "global"


def _object_body(request) -> dict:
    """A JSON object body; an empty body is an error, as for gin's ``ShouldBindJSON``."""
    data = json_body(request, INVALID_BODY)
    if request.stream is None or not isinstance(data, dict):
        raise ApiError(INVALID_BODY)
    return data


def _key_value(request) -> tuple[str, str]:
    data = _object_body(request)
    key, value = data.get("key"), data.get("value")
    if not (isinstance(key, str) and key and isinstance(value, str) and value):
        raise ApiError(INVALID_BODY)
    return key, value


# --- per workspace ---------------------------------------------------------------------------------------

class WorkspaceSecretsApi(Api):
    """``GET|POST|PUT /workspaces/:id/secrets``."""

    auth_by_method = {"GET": (WorkspaceAuth,), "POST": (WorkspaceAuth,), "PUT": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(selectors.workspace_secret_listing(parse_uuid(workspace_id)))

    def post(self, request, workspace_id):
        parsed = parse_uuid(workspace_id)
        key, value = _key_value(request)
        services.workspace_secret_set(workspace_id=parsed, key=key, value=value)
        return Response({"status": "saved", "key": key})

    put = post


class WorkspaceSecretValuesApi(Api):
    """``GET /workspaces/:id/secrets/values``: the merged plaintext env, or nothing at all."""

    auth_by_method = {"GET": (WorkspaceAuth,), "DELETE": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        parsed = parse_uuid(workspace_id)
        auth.check_workspace_recheck(request, parsed)
        values, failed = selectors.merged_secret_values(parsed)
        if failed:
            raise ApiError(
                "one or more secrets failed to decrypt; refusing to return partial bundle",
                status=500,
                failed_keys=failed,
            )
        return Response(dict(sorted(values.items())))  # Go encodes map keys sorted

    def delete(self, request, workspace_id):
        # gin routes by method: DELETE …/secrets/values is ``DELETE …/secrets/:key`` with key "values".
        return WorkspaceSecretApi.delete(self, request, workspace_id, "values")


class WorkspaceSecretApi(Api):
    """``DELETE /workspaces/:id/secrets/:key``."""

    auth_by_method = {"DELETE": (WorkspaceAuth,)}

    def delete(self, request, workspace_id, key):
        services.workspace_secret_delete(workspace_id=parse_uuid(workspace_id), key=key)
        return Response({"status": "deleted", "key": key})


class WorkspaceModelApi(Api):
    """``GET|PUT /workspaces/:id/model``: the ``MODEL_PROVIDER`` secret."""

    auth_by_method = {"GET": (WorkspaceAuth,), "PUT": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        try:
            model = selectors.workspace_model(parse_uuid(workspace_id))
        except DecryptionError:
            raise ApiError("failed to decrypt model", status=500) from None
        if model is None:
            return Response({"model": "", "source": "default"})
        return Response({"model": model, "source": "workspace_secrets"})

    def put(self, request, workspace_id):
        parsed = parse_uuid(workspace_id)
        model = _object_body(request).get("model")
        if model is None:
            model = ""  # absent or null binds to "" in the original, which clears
        if not isinstance(model, str):
            raise ApiError(INVALID_BODY)
        return Response(services.workspace_model_set(workspace_id=parsed, model=model))


# --- global --------------------------------------------------------------------------------------------

class GlobalSecretsApi(Api):
    """``GET|PUT|POST /settings/secrets``."""

    auth_by_method = {"GET": (AdminAuth,), "PUT": (AdminAuth,), "POST": (AdminAuth,)}

    def get(self, request):
        return Response(selectors.global_secret_listing())

    def post(self, request):
        key, value = _key_value(request)
        services.global_secret_set(key=key, value=value)
        return Response({"status": "saved", "key": key, "scope": GLOBAL})

    put = post


class AdminSecretsApi(GlobalSecretsApi):
    """``GET|POST /admin/secrets``: the older alias, without PUT (a PUT here is a gin 404)."""

    auth_by_method = {"GET": (AdminAuth,), "POST": (AdminAuth,)}
    http_method_names = ["get", "post", "head", "options"]


class GlobalSecretApi(Api):
    """``DELETE /settings/secrets/:key`` and ``DELETE /admin/secrets/:key``."""

    auth_by_method = {"DELETE": (AdminAuth,)}

    def delete(self, request, key):
        services.global_secret_delete(key=key)
        return Response({"status": "deleted", "key": key, "scope": GLOBAL})
