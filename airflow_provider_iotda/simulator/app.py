"""The simulator's ASGI application (starlette): the IoTDA API, the gateway's checks, faults
and the ``/_sim`` control endpoint."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_iotda import fields
from airflow_provider_iotda.auth import (
    DATE_HEADER,
    ParsedAuthorization,
    expected_authorization,
    parse_authorization,
    parse_sdk_date,
    query_pairs,
)
from airflow_provider_iotda.simulator.faults import FaultConfig, FaultConfigError
from airflow_provider_iotda.simulator.identity import (
    IDENTITY_PATHS,
    METADATA_SECURITY_KEY_PATH,
    METADATA_TOKEN_PATH,
    OIDC_PATH,
    POD_IDENTITY_PATH,
    IdentityService,
)
from airflow_provider_iotda.simulator.scenario import (
    FLAVOR_TYPE_PATTERN,
    INSTANCE_ID_PATTERN,
    TASK_ID_PATTERN,
    ScenarioError,
    instance_from_dict,
    make_plan,
    task_from_dict,
)
from airflow_provider_iotda.simulator.state import Refusal, SimulatorState, format_time

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONTROL_PREFIX = "/_sim"
INSTANCES_PATH = "/v5/iot/{project_id}/iotda-instances"
INSTANCE_PATH = INSTANCES_PATH + "/{instance_id}"
RESIZE_PATH = INSTANCE_PATH + "/resize"
TASKS_PATH = INSTANCE_PATH + "/tasks"
TASK_PATH = TASKS_PATH + "/{task_id}"
RETRY_PATH = TASK_PATH + "/retry"

#: Error codes the simulator answers with (IOTDA.000006/000017, APIG.* from Huawei's published
#: lists; the 404 codes for a missing instance or task, and those of ``state.Refusal``, are the
#: simulator's own choice).
INVALID_INPUT = "IOTDA.000006"
BAD_FORMAT = "IOTDA.000008"
LIMIT_OUT_OF_RANGE = "IOTDA.000017"
INSTANCE_NOT_FOUND = "IOTDA.014000"
TASK_NOT_FOUND = "IOTDA.014001"
API_NOT_FOUND = "APIG.0101"
AUTH_FAILED = "APIG.0301"
NOT_AUTHORIZED = "APIG.0302"
THROTTLED = "APIG.0308"
BACKEND_UNAVAILABLE = "APIG.0202"
INTERNAL_ERROR = "IOTDA.000000"

MALFORMED_BODY = b'{"page": {"count": 3, "marker": }, "tasks": [{"task_id": "0a1b'


@dataclass(frozen=True)
class AuthSettings:
    """What the simulated gateway accepts: one AK/SK pair, a project, a region and tokens."""

    access_key: str
    secret_key: str = field(repr=False)
    project_id: str
    region: str = "cn-north-4"
    tokens: frozenset[str] = field(default_factory=frozenset, repr=False)
    max_skew_seconds: float = 900.0

    def __post_init__(self) -> None:
        if not self.access_key or not self.secret_key or not self.project_id:
            raise ValueError("access_key, secret_key and project_id must not be empty")


def error_body(code: str, message: str) -> dict[str, str]:
    """An IoTDA/APIG-style error body."""
    return {"error_code": code, "error_msg": message}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _auth_error(reason: str) -> JSONResponse:
    return error_response(401, AUTH_FAILED, f"Incorrect IAM authentication information: {reason}")


def _invalid(reason: str, code: str = INVALID_INPUT) -> JSONResponse:
    prefix = "Invalid input data." if code == INVALID_INPUT else "Invalid input."
    return error_response(400, code, f"{prefix} {reason}")


def describe_seconds(seconds: float) -> str:
    """``3725`` -> ``1 h 2 min 5 s``."""
    total = round(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else ""]
    parts += [f"{minutes} min" if minutes else "", f"{secs} s" if secs or not total else ""]
    return " ".join(part for part in parts if part)


def _paging(
    request: Request, marker_field: fields.Text, marker_name: str
) -> tuple[dict[str, str], int, int, str | None] | Response:
    """The query of a list call: its pairs (first value of each key), offset, limit and marker
    (checked against ``marker_field``), or the error answer."""
    pairs: dict[str, str] = {}
    for key, value in query_pairs(request.scope.get("query_string", b"").decode("latin-1")):
        pairs.setdefault(key, value)
    offset = _int_param(pairs, fields.OFFSET, INVALID_INPUT)
    if isinstance(offset, Response):
        return offset
    limit = _int_param(pairs, fields.LIMIT, LIMIT_OUT_OF_RANGE)
    if isinstance(limit, Response):
        return limit
    marker = pairs.get("marker") or None
    if marker is not None and not marker_field.compiled.match(marker):
        return _invalid(f"marker must be {marker_name}: {marker_field.form}.")
    return pairs, offset, limit, marker


def _int_param(pairs: dict[str, str], spec: fields.Integer, code: str) -> int | JSONResponse:
    """A query parameter of ``fields.py`` (``OFFSET``, ``LIMIT``), answered as IoTDA does."""
    name, low, high = spec.name, spec.low, spec.high or fields.PAGE_MAX
    raw = pairs.get(name)
    if raw is None:
        return spec.default if spec.default is not None else low
    text = raw.strip()
    if not (text.isdigit() or (text.startswith("-") and text[1:].isdigit())):
        return _invalid(f"{name} must be an integer between {low} and {high}, got {raw!r}.")
    value = int(text)
    if not low <= value <= high:
        if code == LIMIT_OUT_OF_RANGE:
            return _invalid(
                f"The specified parameter '{name}' is out of range ({low}..{high}): {value}.", code
            )
        return _invalid(f"{name} must be between {low} and {high}, got {value}.", code)
    return value


class SimulatorApp:
    """ASGI entry point: counts requests, applies faults, then routes to the API or control app."""

    def __init__(
        self, state: SimulatorState, auth: AuthSettings, identity: IdentityService | None = None
    ) -> None:
        self.state = state
        self.auth = auth
        self.identity = identity or IdentityService()
        self.identity_app = Starlette(
            routes=[
                Route(METADATA_TOKEN_PATH, self.metadata_token, methods=["PUT"]),
                Route(METADATA_SECURITY_KEY_PATH, self.metadata_security_key, methods=["GET"]),
                Route(POD_IDENTITY_PATH, self.pod_identity, methods=["POST"]),
                Route(OIDC_PATH, self.assume_with_oidc, methods=["POST"]),
            ],
        )
        handlers: dict[Any, Any] = {404: self._not_found, 405: self._not_found}
        self.api = Starlette(
            routes=[
                Route(INSTANCES_PATH, self.list_instances, methods=["GET"]),
                Route(INSTANCE_PATH, self.show_instance, methods=["GET"]),
                Route(RESIZE_PATH, self.resize, methods=["POST"]),
                Route(TASKS_PATH, self.list_tasks, methods=["GET"]),
                Route(TASK_PATH, self.show_task, methods=["GET"]),
                Route(RETRY_PATH, self.retry_task, methods=["POST"]),
            ],
            exception_handlers=handlers,
        )
        self.control = Starlette(
            routes=[
                Route(CONTROL_PREFIX + "/health", self.health, methods=["GET"]),
                Route(CONTROL_PREFIX + "/stats", self.stats, methods=["GET"]),
                Route(CONTROL_PREFIX + "/tasks", self.add_task, methods=["POST"]),
                Route(CONTROL_PREFIX + "/instances", self.instances, methods=["GET", "POST"]),
                Route(
                    CONTROL_PREFIX + "/instances/{instance_id}/tasks",
                    self.instance_tasks,
                    methods=["GET"],
                ),
                Route(
                    CONTROL_PREFIX + "/instances/{instance_id}/next-resize",
                    self.next_run,
                    methods=["POST"],
                ),
                Route(
                    CONTROL_PREFIX + "/instances/{instance_id}/next-retry",
                    self.next_run,
                    methods=["POST"],
                ),
                Route(CONTROL_PREFIX + "/faults", self.faults, methods=["GET", "POST"]),
                Route(CONTROL_PREFIX + "/advance", self.advance, methods=["POST"]),
                Route(CONTROL_PREFIX + "/clock", self.clock, methods=["GET", "POST"]),
                Route(CONTROL_PREFIX + "/reset", self.reset, methods=["POST"]),
            ],
        )

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        request_id = os.urandom(16).hex().encode()
        raw_send = send  # _drop_connection needs uvicorn's own send
        send = _with_request_id(send, request_id, self.identity.now)
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self.state.record_request(path, control=True, method=scope["method"])
            await self.control(scope, receive, send)
            return
        if path in IDENTITY_PATHS:  # credential stand-ins: no faults, not API requests
            self.state.record_request(path, control=True, method=scope["method"])
            await self.identity_app(scope, receive, send)
            return
        self.state.record_request(path, control=False, method=scope["method"])
        state = self.state

        async def api_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.record_status(int(message["status"]))
            await send(message)

        decision = state.decide_fault()
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)
        kind = decision.kind
        config = state.injector.config
        if kind is None:
            await self.api(scope, receive, api_send)
        elif kind == "drop":
            await _drop_connection(scope, receive, raw_send)
        elif kind == "429":
            await error_response(
                429,
                THROTTLED,
                "The throttling threshold has been reached: policy user over ratelimit "
                "(simulated fault)",
                headers={"Retry-After": str(config.retry_after)},
            )(scope, receive, api_send)
        elif kind == "500":
            await error_response(500, INTERNAL_ERROR, "Internal server error (simulated fault).")(
                scope, receive, api_send
            )
        elif kind == "503":
            await error_response(
                503, BACKEND_UNAVAILABLE, "Backend unavailable (simulated fault)."
            )(scope, receive, api_send)
        elif kind == "slow":
            await asyncio.sleep(config.slow_seconds)
            await self.api(scope, receive, api_send)
        else:  # malformed, truncated
            await self._corrupted(kind, scope, receive, api_send)

    async def _corrupted(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        body = MALFORMED_BODY
        if kind == "truncated":
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.body":
                    chunks.append(bytes(message.get("body", b"")))

            await self.api(scope, receive, capture)
            full = b"".join(chunks)
            body = full[: max(1, len(full) // 2)]
        await Response(body, status_code=200, media_type="application/json")(scope, receive, send)

    # -- gateway checks --------------------------------------------------------------------------

    async def _authenticate(self, request: Request) -> Response | None:
        """None when the request is authenticated, else the 401 response."""
        headers = request.headers
        token = headers.get("x-auth-token")
        if token is not None:
            if any(hmac.compare_digest(token.encode(), good.encode()) for good in self.auth.tokens):
                self.state.record_auth("token")
                return None
            return _auth_error("the token in X-Auth-Token is not valid or has expired")
        authorization = headers.get("authorization")
        if authorization is None:
            return _auth_error(
                "the request has neither an AK/SK signature (Authorization) nor an X-Auth-Token"
            )
        try:
            parsed = parse_authorization(authorization)
        except ValueError:
            return _auth_error(
                "the Authorization header is not an SDK-HMAC-SHA256 or V11-HMAC-SHA256 signature"
            )
        secret_key = self._secret_key(parsed, headers)
        if isinstance(secret_key, Response):
            return secret_key
        refused = self._check_date_and_scope(parsed, headers.get(DATE_HEADER.lower()))
        if refused is None:
            refused = await self._check_signature(parsed, secret_key, request)
        if refused is None:
            self.state.record_auth(parsed.algorithm)
        return refused

    def _secret_key(self, parsed: ParsedAuthorization, headers: Headers) -> str | Response:
        """The secret key of the signature's access key: the configured one, or a temporary
        key the identity endpoints issued (with its security token, not expired)."""
        if hmac.compare_digest(parsed.access_key.encode(), self.auth.access_key.encode()):
            return self.auth.secret_key
        issued = self.identity.lookup(parsed.access_key)
        if issued is None:
            return _auth_error("the access key (AK) does not exist")
        token = headers.get("x-security-token")
        if token is None:
            return _auth_error(
                "the access key is temporary: the request needs its X-Security-Token"
            )
        if not hmac.compare_digest(token.encode(), issued.security_token.encode()):
            return _auth_error("the X-Security-Token does not belong to the access key")
        if self.identity.now() >= issued.expires_at:
            return _auth_error(
                "the security token has expired (at "
                f"{issued.expires_at.strftime('%Y-%m-%dT%H:%M:%SZ')})"
            )
        return issued.secret_key

    def _check_date_and_scope(
        self, parsed: ParsedAuthorization, sdk_date: str | None
    ) -> Response | None:
        """The gateway's clock-skew rule, and the V11 credential scope (region, date)."""
        auth = self.auth
        if sdk_date is None:
            return _auth_error(f"the {DATE_HEADER} header is missing")
        try:
            signed_at = parse_sdk_date(sdk_date)
        except ValueError:
            return _auth_error(f"{DATE_HEADER} {sdk_date!r} is not of the form YYYYMMDDTHHMMSSZ")
        now = self.identity.now()
        skew = (signed_at - now).total_seconds()
        if abs(skew) > auth.max_skew_seconds:
            direction = "ahead of" if skew > 0 else "behind"
            return _auth_error(
                f"{DATE_HEADER} {sdk_date} is {describe_seconds(skew)} {direction} the server "
                f"clock ({now.strftime('%Y%m%dT%H%M%SZ')}); at most "
                f"{describe_seconds(auth.max_skew_seconds)} of difference is allowed"
            )
        if parsed.info is None:
            return None
        date_part, region, _service = parsed.info.split("/")
        if region != auth.region:
            return _auth_error(
                f"the V11-HMAC-SHA256 credential scope names region {region!r}, "
                f"this endpoint serves {auth.region!r}"
            )
        if date_part != sdk_date[:8]:
            return _auth_error(
                f"the credential scope date {date_part} does not match {DATE_HEADER}"
            )
        return None

    async def _check_signature(
        self, parsed: ParsedAuthorization, secret_key: str, request: Request
    ) -> Response | None:
        """Recompute the signature over the request as received; None when it matches."""
        scope = request.scope
        raw_path = scope.get("raw_path") or scope["path"].encode()
        raw_headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        try:
            expected = expected_authorization(
                parsed,
                secret_key,
                request.method,
                raw_path.decode("latin-1"),
                scope.get("query_string", b"").decode("latin-1"),
                raw_headers,
                await request.body(),
            )
        except ValueError as exc:
            return _auth_error(str(exc))
        signature = expected.rsplit("Signature=", 1)[-1]
        if not hmac.compare_digest(signature.encode(), parsed.signature.encode()):
            return _auth_error(
                "verify aksk signature fail: the signature does not match (check the secret "
                "key, and that the Host header, path and query string are the ones signed)"
            )
        return None

    async def _check_request(self, request: Request) -> Response | str:
        """Gateway and IoTDA checks shared by the routes: the instance ID (``""`` for the
        project-wide list), or an error answer."""
        denied = await self._authenticate(request)
        if denied is not None:
            return denied
        project_id = request.path_params["project_id"]
        header_project = request.headers.get("x-project-id")
        if project_id != self.auth.project_id or (
            header_project is not None and header_project != self.auth.project_id
        ):
            return error_response(
                403,
                NOT_AUTHORIZED,
                "The IAM user is not authorized to access the API: the project ID in the "
                "request is not the credentials' project",
            )
        instance_id: str = request.path_params.get("instance_id", "")
        if "instance_id" in request.path_params and not INSTANCE_ID_PATTERN.match(instance_id):
            return _invalid(f"instance_id must be {fields.INSTANCE_ID.form}.")
        return instance_id

    async def _check_task_request(self, request: Request) -> tuple[str, str] | Response:
        """The checks of the routes of one task: the instance and task IDs, or the error."""
        checked = await self._check_request(request)
        if isinstance(checked, Response):
            return checked
        task_id: str = request.path_params["task_id"]
        if not TASK_ID_PATTERN.match(task_id):
            return _invalid(f"task_id must be {fields.TASK_ID.form}.")
        if not self.state.has_instance(checked):
            return self._instance_not_found(checked)
        return checked, task_id

    def _instance_not_found(self, instance_id: str) -> JSONResponse:
        return error_response(
            404,
            INSTANCE_NOT_FOUND,
            f"The instance does not exist (instance not found): {instance_id}",
        )

    # -- API routes ------------------------------------------------------------------------------

    async def list_tasks(self, request: Request) -> Response:
        """``GET /v5/iot/{project_id}/iotda-instances/{instance_id}/tasks``."""
        checked = await self._check_request(request)
        if isinstance(checked, Response):
            return checked
        paging = _paging(request, fields.TASK_ID, "a task ID")
        if isinstance(paging, Response):
            return paging
        _pairs, offset, limit, marker = paging
        body = self.state.list_tasks(checked, offset, limit, marker)
        if body is None:
            return self._instance_not_found(checked)
        return JSONResponse(body)

    async def show_task(self, request: Request) -> Response:
        """``GET /v5/iot/{project_id}/iotda-instances/{instance_id}/tasks/{task_id}``."""
        ids = await self._check_task_request(request)
        if isinstance(ids, Response):
            return ids
        checked, task_id = ids
        body = self.state.get_task(checked, task_id)
        if body is None:
            return error_response(404, TASK_NOT_FOUND, f"The task does not exist: {task_id}")
        return JSONResponse(body)

    async def list_instances(self, request: Request) -> Response:
        """``GET /v5/iot/{project_id}/iotda-instances``."""
        checked = await self._check_request(request)
        if isinstance(checked, Response):
            return checked
        paging = _paging(request, fields.INSTANCE_ID, "an instance ID")
        if isinstance(paging, Response):
            return paging
        pairs, offset, limit, marker = paging
        instance_type = pairs.get("instance_type") or None
        if instance_type is not None and instance_type not in ("standard", "enterprise"):
            return _invalid("instance_type must be standard or enterprise.")
        body = self.state.list_instances(
            offset, limit, marker, pairs.get("name") or None, instance_type
        )
        return JSONResponse(body)

    async def show_instance(self, request: Request) -> Response:
        """``GET /v5/iot/{project_id}/iotda-instances/{instance_id}``."""
        checked = await self._check_request(request)
        if isinstance(checked, Response):
            return checked
        body = self.state.show_instance(checked)
        if body is None:
            return self._instance_not_found(checked)
        return JSONResponse(body)

    async def resize(self, request: Request) -> Response:
        """``POST .../iotda-instances/{instance_id}/resize`` with ``{"flavor", "delay",
        "is_auto_pay"}``: a MODIFY task starts; the answer is ``{"order_id"}``."""
        checked = await self._check_request(request)
        if isinstance(checked, Response):
            return checked
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _invalid("the body is not valid JSON.", BAD_FORMAT)
        if not isinstance(data, dict):
            return _invalid("the body must be a JSON object.", BAD_FORMAT)
        flavor = data.get("flavor")
        if not isinstance(flavor, dict):
            return _invalid('flavor is required: {"type": ..., "size": ...}.')
        kind, size = flavor.get("type"), flavor.get("size")
        if not isinstance(kind, str) or not FLAVOR_TYPE_PATTERN.match(kind):
            return _invalid(f"flavor.type must be {fields.FLAVOR_TYPE.form}.")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            return _invalid("flavor.size must be an integer of at least 1.")
        flags: dict[str, bool] = {}
        for name in ("delay", "is_auto_pay"):
            value = data.get(name, False)
            if not isinstance(value, bool):
                return _invalid(f"{name} must be true or false.")
            flags[name] = value
        result = self.state.resize(checked, {"type": kind, "size": size}, delay=flags["delay"])
        if result is None:
            return self._instance_not_found(checked)
        if isinstance(result, Refusal):
            return error_response(result.status, result.code, result.message)
        return JSONResponse(result)

    async def retry_task(self, request: Request) -> Response:
        """``POST .../tasks/{task_id}/retry``: a FAILED task runs again."""
        ids = await self._check_task_request(request)
        if isinstance(ids, Response):
            return ids
        checked, task_id = ids
        result = self.state.retry_task(checked, task_id)
        if result is None:
            return error_response(404, TASK_NOT_FOUND, f"The task does not exist: {task_id}")
        if isinstance(result, Refusal):
            return error_response(result.status, result.code, result.message)
        return JSONResponse(result)

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = (
            "The API does not exist."
            if status == 405
            else "The API does not exist or has not been published in the environment."
        )
        return error_response(404, API_NOT_FOUND, message)

    # -- control routes --------------------------------------------------------------------------

    async def _json(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"the body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ScenarioError("the body must be a JSON object")
        return data

    async def health(self, request: Request) -> Response:
        """``GET /_sim/health``."""
        return JSONResponse({"status": "ok"})

    async def stats(self, request: Request) -> Response:
        """``GET /_sim/stats``: counters, clock, faults and issued credentials."""
        return JSONResponse({**self.state.stats(), "identity": self.identity.stats()})

    async def clock(self, request: Request) -> Response:
        """``GET /_sim/clock`` shows, ``POST`` sets ``{"offset": s, "credential_ttl": s}``."""
        if request.method == "POST":
            try:
                data = await self._json(request)
                for key in ("offset", "credential_ttl"):
                    value = data.get(key)
                    if value is not None and (
                        isinstance(value, bool) or not isinstance(value, int | float)
                    ):
                        raise ScenarioError(f"{key} must be a number of seconds")
                if data.get("credential_ttl") is not None:
                    self.identity.set_credential_ttl(float(data["credential_ttl"]))
                if data.get("offset") is not None:
                    self.identity.set_clock_offset(float(data["offset"]))
            except (ScenarioError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {
                "offset": self.identity.clock_offset,
                "credential_ttl": self.identity.credential_ttl,
                "gateway_time": self.identity.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        )

    # -- credential stand-ins ----------------------------------------------------------------

    async def metadata_token(self, request: Request) -> Response:
        """``PUT /meta-data/latest/api/token``: an IMDS token (404 when tokens are off)."""
        token = self.identity.new_metadata_token()
        if token is None:
            return Response("Not Found", status_code=404)
        return Response(token, media_type="text/plain")

    async def metadata_security_key(self, request: Request) -> Response:
        """``GET /openstack/latest/securitykey``: a temporary credential (IMDS token needed)."""
        if not self.identity.metadata_token_valid(request.headers.get("x-metadata-token")):
            return Response("Unauthorized: X-Metadata-Token missing or unknown", status_code=401)
        return JSONResponse(self.identity.issue("ecs_metadata").answer())

    async def pod_identity(self, request: Request) -> Response:
        """``POST /cce/pod-identity/credentials`` with the pod's token as ``Authorization``."""
        expected = self.identity.pod_token
        given = request.headers.get("authorization", "")
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            return JSONResponse({"error": "the pod identity token is not valid"}, status_code=401)
        return JSONResponse(self.identity.issue("pod_identity").answer())

    async def assume_with_oidc(self, request: Request) -> Response:
        """``POST /v5/agencies/assume-with-oidc``: STS, for an accepted id token."""
        try:
            data = await self._json(request)
        except ScenarioError as exc:
            return error_response(400, "STS.0001", str(exc))
        missing = [key for key in ("provider_urn", "agency_urn", "id_token") if not data.get(key)]
        if missing:
            return error_response(400, "STS.0001", f"missing: {', '.join(missing)}")
        token = str(data["id_token"])
        if not any(
            hmac.compare_digest(token.encode(), good.encode()) for good in self.identity.oidc_tokens
        ):
            return error_response(401, "STS.0101", "the id_token is not valid")
        return JSONResponse(self.identity.issue("oidc").answer("sts"))

    async def add_task(self, request: Request) -> Response:
        """``POST /_sim/tasks``: add a task; body = a scenario task plus ``instance_id``."""
        try:
            data = await self._json(request)
            instance_id = data.pop("instance_id", None)
            if not isinstance(instance_id, str):
                raise ScenarioError("instance_id is required")
            data.setdefault("type", "MODIFY")
            spec = task_from_dict(data)
            task_id = self.state.add_task(instance_id, spec)
        except ScenarioError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"instance_id": instance_id, "task_id": task_id}, status_code=201)

    async def instances(self, request: Request) -> Response:
        """``GET /_sim/instances`` lists instance IDs; ``POST`` adds ``{"instance_id": ...}``."""
        if request.method == "GET":
            return JSONResponse({"instances": self.state.instance_ids()})
        try:
            data = await self._json(request)
            instance_id = data.get("instance_id")
            if not isinstance(instance_id, str):
                raise ScenarioError("instance_id is required")
            if set(data) == {"instance_id"}:
                self.state.add_instance(instance_id)
            else:  # a whole scenario instance: flavor, operate window, plans, tasks
                self.state.put_instance(instance_from_dict(data))
        except ScenarioError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"instance_id": instance_id}, status_code=201)

    async def next_run(self, request: Request) -> Response:
        """``POST /_sim/instances/{id}/next-resize`` (or ``next-retry``) with a run plan
        ``{"outcome", "pending_seconds", "running_seconds", "status_detail"}``."""
        instance_id = request.path_params["instance_id"]
        if not self.state.has_instance(instance_id):
            return JSONResponse({"error": f"no instance {instance_id}"}, status_code=404)
        try:
            plan = make_plan(await self._json(request))
        except ScenarioError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if request.url.path.endswith("/next-resize"):
            self.state.plan_resize(instance_id, plan)
        else:
            self.state.plan_retry(instance_id, plan)
        return JSONResponse({"instance_id": instance_id, "plan": plan.__dict__}, status_code=201)

    async def instance_tasks(self, request: Request) -> Response:
        """``GET /_sim/instances/{instance_id}/tasks``: every task, hidden ones included."""
        instance_id = request.path_params["instance_id"]
        if not self.state.has_instance(instance_id):
            return JSONResponse({"error": f"no instance {instance_id}"}, status_code=404)
        return JSONResponse({"tasks": self.state.all_tasks(instance_id)})

    async def faults(self, request: Request) -> Response:
        """``GET /_sim/faults`` shows, ``POST`` replaces the fault configuration."""
        if request.method == "POST":
            try:
                config = FaultConfig.from_dict(await self._json(request))
            except (FaultConfigError, ScenarioError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            self.state.set_faults(config)
        return JSONResponse(self.state.injector.config.to_dict())

    async def advance(self, request: Request) -> Response:
        """``POST /_sim/advance`` with ``{"seconds": n}``: move simulated time forward."""
        try:
            data = await self._json(request)
            seconds = data.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise ScenarioError("seconds must be a number >= 0")
        except ScenarioError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        now = self.state.advance(float(seconds))
        return JSONResponse({"now": format_time(now), "elapsed": self.state.clock.elapsed()})

    async def reset(self, request: Request) -> Response:
        """``POST /_sim/reset``: restart the clock, reload the scenario, zero counters."""
        self.state.reset()
        return JSONResponse({"status": "reset", "now": format_time(self.state.now())})


def _with_request_id(
    send: Send, request_id: bytes, now: Callable[[], dt.datetime] | None = None
) -> Send:
    """Add ``X-Request-Id`` and (on the gateway's clock) ``Date`` to the answer."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers.append((b"x-request-id", request_id))
            if now is not None and not any(name.lower() == b"date" for name, _ in headers):
                stamp = email.utils.format_datetime(now(), usegmt=True)
                headers.append((b"date", stamp.encode()))
            message["headers"] = headers
        await send(message)

    return wrapped


async def _drop_connection(scope: Scope, receive: Receive, send: Send) -> None:
    """Close the client's connection without answering.

    Uses the transport behind uvicorn's ``send`` (its request cycle object); without one the
    request fails with an exception, which the server turns into a 500.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise ConnectionAbortedError("simulated dropped connection (server gives no transport)")
    transport.abort()
    # Let the server notice the disconnect, so that it does not answer with a 500.
    try:
        async with asyncio.timeout(5):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        pass
