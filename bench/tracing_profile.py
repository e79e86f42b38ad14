"""Where the platform's tracing CPU goes, per span, in-process (cProfile; no py-spy in the venv).

``bench/load.py --compare-tracing`` says how much tracing costs; this says what the cost is made
of, piece by piece, on the platform's real code and a real PostgreSQL:

- the request path of ``registry.proxy.proxy_a2a``: ``traces.otel.start_span`` of an
  ``a2a.proxy`` span continuing an inbound ``traceparent``, its attributes, ``traceparent_of``
  and ``end`` (which hands the span to the BatchSpanProcessor's queue) — CPU of the calling
  thread, against the same calls with ``OTEL_SDK_DISABLED`` (the no-op tracer);
- the platform's batch exporter, ``DatabaseSpanExporter.export`` of a 512-span batch (the SDK's
  batch size): the row building and the one INSERT;
- the receiver's work for an agent's export of 512 spans (``a2a.task`` + ``chat`` pairs, encoded
  by the SDK's own OTLP encoder, as the runtime sends them): ``traces.otlp.decode_protobuf`` and
  the INSERT of ``traces.services``.

    MOLECULE_HOME=/tmp/tracing-profile-home .venv/bin/python -m molecule_site.embedded exec -- \\
        .venv/bin/python bench/tracing_profile.py [--spans 512] [--rounds 10] [--top 12]

It migrates the embedded database of that MOLECULE_HOME first, stores its spans under a
workspace it creates, and deletes them at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molecule_site.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

INBOUND = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class _Keep(SpanExporter):
    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def one_call(otel, workspace_id: str) -> None:
    """What proxy_a2a does with its span around one call."""
    span = otel.start_span("a2a.proxy", kind=SpanKind.SERVER, traceparent=INBOUND,
                           attributes={"workspace.id": workspace_id, "a2a.caller_id": "caller"})
    if span.is_recording():
        span.set_attribute("a2a.method", "message/send")
    otel.traceparent_of(span)
    if span.is_recording():
        span.set_attribute("http.response.status_code", 200)
        span.end()


def request_path(otel, workspace_id: str, count: int, profile: cProfile.Profile | None = None) -> float:
    """CPU µs per proxied call that the span adds in the calling thread, in chunks the batch
    queue (2,048 spans) holds: the exporter thread empties it between chunks (not counted)."""
    spent = 0.0
    for _ in range(count // 1000):
        start = time.thread_time()
        if profile:
            profile.enable()
        for _ in range(1000):
            one_call(otel, workspace_id)
        if profile:
            profile.disable()
        spent += time.thread_time() - start
        otel.force_flush()
    return spent * 1e6 / (count // 1000 * 1000)


def platform_spans(otel, workspace_id: str, count: int) -> list:
    """``count`` finished a2a.proxy spans as the platform's tracer makes them."""
    provider = TracerProvider(resource=Resource.create({"service.name": otel.SERVICE_NAME}))
    keep = _Keep()
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer(otel.TRACER_NAME)
    context = otel._propagator.extract({otel.TRACEPARENT: INBOUND})
    for _ in range(count):
        span = tracer.start_span("a2a.proxy", context=context, kind=SpanKind.SERVER,
                                 attributes={"workspace.id": workspace_id, "a2a.method": "message/send"})
        span.set_attribute("http.response.status_code", 200)
        span.end()
    return keep.spans


def agent_export(workspace_id: str, count: int) -> bytes:
    """An agent's OTLP protobuf export of ``count`` spans: a2a.task + chat pairs, as the runtime's."""
    provider = TracerProvider(resource=Resource.create({"service.name": "molecule-workspace",
                                                        "workspace.id": workspace_id, "workspace.runtime": "echo"}))
    keep = _Keep()
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("molecule.workspace")
    for n in range(count // 2):
        with tracer.start_as_current_span("a2a.task", kind=SpanKind.SERVER, attributes={
                "workspace.id": workspace_id, "a2a.task_id": f"t{n}", "a2a.context_id": "c"}):
            chat = tracer.start_span("chat echo", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.system": "bench", "gen_ai.request.model": "echo"})
            chat.set_attribute("gen_ai.usage.input_tokens", 1)
            chat.set_attribute("gen_ai.usage.output_tokens", 1)
            chat.set_attribute("gen_ai.response.finish_reasons", ["stop"])
            chat.end()
    return encode_spans(keep.spans).SerializeToString()


def profiled(label: str, rounds: int, spans: int, top: int, work) -> None:
    """``work()`` ``rounds`` times under cProfile: µs per span (CPU of this thread) and the top
    functions by own time."""
    profile = cProfile.Profile()
    start = time.thread_time()
    profile.enable()
    for _ in range(rounds):
        work()
    profile.disable()
    per_span = (time.thread_time() - start) * 1e6 / (rounds * spans)
    print(f"\n{label}: {per_span:.1f} µs CPU per span under cProfile ({rounds} × {spans} spans)")
    print_top(profile, top)


def print_top(profile: cProfile.Profile, top: int) -> None:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def timed(rounds: int, spans: int, work) -> float:
    start = time.thread_time()
    for _ in range(rounds):
        work()
    return (time.thread_time() - start) * 1e6 / (rounds * spans)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=512, help="spans per batch (the SDK's max_export_batch_size)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--top", type=int, default=12, help="functions shown per profile")
    args = parser.parse_args()
    call_command("migrate", "--noinput", verbosity=0)

    from traces import otel, otlp, services
    from traces.models import TraceSpan
    from workspaces.models import Workspace

    workspace = Workspace.objects.create(name="tracing-profile")
    workspace_id = str(workspace.id)
    try:
        settings.OTEL_SDK_DISABLED = True
        disabled = request_path(otel, workspace_id, 20000)
        settings.OTEL_SDK_DISABLED = False
        otel.tracer()  # built once, as in a web process
        enabled = request_path(otel, workspace_id, 20000)
        print(f"request path of proxy_a2a, CPU per call in the calling thread: {enabled:.1f} µs traced, "
              f"{disabled:.1f} µs with OTEL_SDK_DISABLED (span + attributes + traceparent + end, queued)")
        profile = cProfile.Profile()
        request_path(otel, workspace_id, 5000, profile)
        print_top(profile, args.top)

        batch = platform_spans(otel, workspace_id, args.spans)
        exporter = otel.DatabaseSpanExporter()
        rows_only = timed(args.rounds, args.spans, lambda: [otel._row(span) for span in batch])
        print(f"\nplatform exporter: building rows {rows_only:.1f} µs per span; whole export, timed: "
              f"{timed(args.rounds, args.spans, lambda: exporter.export(batch)):.1f} µs per span "
              "(its INSERT's PostgreSQL side is not in this figure)")
        profiled("platform exporter, DatabaseSpanExporter.export", args.rounds, args.spans, args.top,
                 lambda: exporter.export(batch))

        body = agent_export(workspace_id, args.spans)
        print(f"\nreceiver: an agent's export of {args.spans} spans is {len(body):,} bytes of protobuf")
        decode = timed(args.rounds, args.spans, lambda: otlp.decode_protobuf(body))

        def receive():
            decoded = otlp.decode_protobuf(body)
            for row in decoded.spans:
                row.workspace_id = workspace.id
            services.spans_store(rows=decoded.spans)

        print(f"receiver: decode_protobuf {decode:.1f} µs per span; decode + INSERT, timed: "
              f"{timed(args.rounds, args.spans, receive):.1f} µs per span")
        profiled("receiver, decode_protobuf + spans_store", args.rounds, args.spans, args.top, receive)
    finally:
        TraceSpan.objects.filter(workspace=workspace).delete()
        workspace.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
