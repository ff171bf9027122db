"""Real GraphQL servers (strawberry's ASGI app, graphql-core underneath) for the login and WebSocket tests:
a login mutation as NestJS/Apollo apps write one (`login(email, password) { accessToken }`, a refused login
an `errors` entry with code UNAUTHENTICATED and HTTP 200), and graphql-transport-ws on the same path, whose
`onConnect` may require a token in `connection_init`'s payload. Run under uvicorn with `servers.serving`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLError
from servers import SMOKE_PASSWORD, SMOKE_USER, Faults, make_jwt, valid_jwt
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

# The mutation a user writes for this server: the product's $username / $password into its email / password.
LOGIN_MUTATION = ("mutation Login($username: String!, $password: String!) "
                  "{ login(email: $username, password: $password) { accessToken } }")
# A mutation written for another schema: `username` is no argument of this server's login.
WRONG_MUTATION = ("mutation Login($username: String!, $password: String!) "
                  "{ login(username: $username, password: $password) { accessToken } }")


# Prisma's error for a query on a dropped table, as Apollo passes it on: many lines, the word "credentials" in
# the resolver's name, and what failed on the last line.
PRISMA_TABLE_GONE = (
    "\nInvalid `this.prisma.user.findUnique()` invocation in\n/app/src/auth/auth.service.ts:24:44\n\n"
    "  21   async validateCredentials(email: string, password: string) {\n"
    "  22     // the smoke account's credentials are checked against the users table\n"
    "→ 24     const user = await this.prisma.user.findUnique(\n"
    "The table `blog.User` does not exist in the current database.")


@dataclass
class GraphQLState:
    """What the GraphQL server requires of a WebSocket: a bearer in connection_init's payload (`ws_token`)."""

    ws_token: bool = False


@strawberry.type
class Session:
    access_token: str  # accessToken in the schema


def schema(faults: Faults) -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        def health(self) -> str:
            return "ok"

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def login(self, email: str, password: str) -> Session:
            if "login_broken" in faults:
                raise GraphQLError("Internal server error", extensions={"code": "INTERNAL_SERVER_ERROR"})
            if "prisma_table_gone" in faults:  # as a NestJS + Prisma resolver's error reaches Apollo's answer
                raise GraphQLError(PRISMA_TABLE_GONE, extensions={"code": "INTERNAL_SERVER_ERROR"})
            if email != SMOKE_USER or password != SMOKE_PASSWORD:
                raise GraphQLError("Invalid credentials", extensions={"code": "UNAUTHENTICATED"})
            token = make_jwt(email, 3600)
            faults.tokens.append(token)
            return Session(access_token=token)

    return strawberry.Schema(query=Query, mutation=Mutation)


class _App(GraphQL):  # type: ignore[misc,type-arg]
    def __init__(self, faults: Faults, state: GraphQLState, protocols: tuple[str, ...]) -> None:
        super().__init__(schema(faults), graphql_ide=None, subscription_protocols=protocols)
        self.state = state

    async def on_ws_connect(self, context: dict[str, Any]) -> Any:
        if self.state.ws_token:
            value = str(context["connection_params"].get("Authorization", ""))
            if not (value.startswith("Bearer ") and valid_jwt(value[7:])):
                raise ConnectionRejectionError()
        return await super().on_ws_connect(context)


def graphql_app(faults: Faults, state: GraphQLState | None = None, legacy_only: bool = False) -> Any:
    """The GraphQL app: POST /graphql (any path) for the login, graphql-transport-ws on the WebSocket; with
    `legacy_only`, the WebSocket speaks only the older subscriptions-transport-ws ("graphql-ws")."""
    protocols = (GRAPHQL_WS_PROTOCOL,) if legacy_only else (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
    return _App(faults, state or GraphQLState(), protocols)
