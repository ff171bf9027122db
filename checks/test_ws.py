"""WebSocket disconnections: the handshake, a ping, and the open-connections gauge (a leak)."""

from __future__ import annotations

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.config.keys import skipped_for
from pytest_opscheck.fixtures.edge import Http
from pytest_opscheck.probes.diagnosis import api as http_probe
from pytest_opscheck.probes.diagnosis import websocket as probe
from pytest_opscheck.probes.resource.websocket import WebSocketTarget
from pytest_opscheck.verdict import expect, fail, skip_unless_configured


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The WebSocket does not open. Try it by hand:  wscat -c {websocket_url}
- 404: no WebSocket route at that path (websocket_url, or the backend's route)
- 426, or a plain 200/400: something in front (nginx, a load balancer) does not pass the upgrade. Ensure the
  WebSocket upgrade headers are passed, nginx:  proxy_http_version 1.1;
  proxy_set_header Upgrade $http_upgrade;  proxy_set_header Connection "upgrade";
- 401/403: the token is missing or refused (see auth.token_accepted); websocket_token says whether the
  channel takes one ("none"; "header": as a bearer header; "query": as a query parameter)
- "no WebSocket answers at this path; HTTP on the same origin answers": the server upgrades other paths
  only (a ws/socket.io server attached to one path): fix websocket_url or the server's WebSocket path
- Socket.io: no engine.io open packet, or the CONNECT refused (44): websocket_protocol and the path
  (default /socket.io/), or the server's auth middleware; graphql-transport-ws: a 4403 close is the
  server's onConnect refusing, 4406 the subprotocol; a server that speaks the legacy
  subscriptions-transport-ws (Apollo Server 2/3, NestJS installSubscriptionHandlers) wants
  websocket_protocol = "graphql-ws", and its connection_error is its onConnect refusing
- closed right after the upgrade with a code (1002, 4406): the server wants a subprotocol; set
  websocket_protocol to the one it speaks
Errors on the server side:  {compose} logs {backend} | grep -i "websocket\\|socket" """
)
@pytest.mark.topics("websocket")
def test_handshake(ws: WebSocketTarget) -> None:
    finding = probe.handshake(ws)
    expect(finding)


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """The WebSocket opens but its heartbeat does not answer in time (a ping frame's pong; Socket.io: the
server's own engine.io ping, due pingInterval after the open; graphql-transport-ws: its pong): the server's
event loop is stuck or overloaded, or a proxy swallows frames; clients will see "Offline" and reconnect in
a loop.
  {compose} logs {backend} | grep -i "websocket\\|socket"
  docker stats --no-stream
If the server is overloaded:  {compose} restart {backend}"""
)
@pytest.mark.topics("websocket")
@pytest.mark.depends_on("ws")
def test_ping(ws: WebSocketTarget) -> None:
    finding = probe.ping(ws)
    expect(finding)


@pytest.mark.severity("P2")
@pytest.mark.resolution(
    """More WebSocket connections are open than the limit: clients reconnect without closing the old
socket (a connection leak), or the server never reaps dead ones.
  curl {metrics_url} | grep websocket
Check the client code for reconnect loops that leak; a restart drops them for now:
  {compose} restart {backend}"""
)
@pytest.mark.topics("websocket")
@pytest.mark.depends_on("backend")
@pytest.mark.service("backend")
def test_connections_gauge(http: Http, opscheck_config: Settings) -> None:
    skip_unless_configured(skipped_for(opscheck_config, "metrics_path"))
    assert opscheck_config.metrics_path is not None
    metric = opscheck_config.ws_connections_metric
    answer = http.backend.get(opscheck_config.metrics_path)
    finding = http_probe.connections_gauge(answer, metric, opscheck_config.thresholds.ws_connections_max)
    if finding is None:
        if opscheck_config.missing("websocket_url"):
            pytest.skip(f"no {metric} gauge in {opscheck_config.metrics_path} and no websocket_url configured")
        fail(f"no {metric} gauge in {opscheck_config.metrics_path}: set ws_connections_metric to the gauge's name",
             {"metrics": answer.line()})
    expect(finding)
