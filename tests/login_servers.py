"""Real login backends whose request is not {"username", "password"}, run under uvicorn with `servers.serving`:

- `fastapi_email_app`: FastAPI with a pydantic body `{"email", "password"}` at /api/auth/login (a request
  without `email` gets FastAPI's own 422 naming `body.email`), and the OAuth2 form login of FastAPI's full-stack
  template at /api/v1/login/access-token (OAuth2PasswordRequestForm: a JSON body gets a 422 naming
  `body.username`); a wrong password gets 401 / 400 as those apps answer;
- `nest_shaped_app`: the answers of a NestJS login behind a ValidationPipe (class-validator), as NestJS writes
  them: 400 `{"statusCode": 400, "message": ["email must be an email", ...], "error": "Bad Request"}` for a
  body that fails the DTO, 401 `{"statusCode": 401, "message": "Unauthorized"}` for a wrong password. (NestJS
  itself needs Node and its packages: the shape is reproduced on Starlette.)
"""


import re
from typing import Annotated, Any

from servers import SMOKE_PASSWORD, SMOKE_USER, Faults, make_jwt


def fastapi_email_app(faults: Faults) -> Any:
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.security import OAuth2PasswordRequestForm
    from pydantic import BaseModel

    class Credentials(BaseModel):
        email: str
        password: str

    app = FastAPI()

    def issue() -> str:
        token = make_jwt(SMOKE_USER, 3600)
        faults.tokens.append(token)
        return token

    @app.post("/api/auth/login")
    def login(body: Credentials) -> dict[str, str]:
        if "login_broken" in faults:
            raise HTTPException(status_code=500, detail="database unavailable")
        if body.email != SMOKE_USER or body.password != SMOKE_PASSWORD:
            raise HTTPException(status_code=401, detail="Invalid credentials")
        return {"accessToken": issue()}

    @app.post("/api/v1/login/access-token")
    def access_token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
        if form.username != SMOKE_USER or form.password != SMOKE_PASSWORD:
            raise HTTPException(status_code=400, detail="Incorrect email or password")
        return {"access_token": issue(), "token_type": "bearer"}

    return app


def nest_shaped_app(faults: Faults) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def login(request: Request) -> Response:
        try:
            data = await request.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        problems = []
        email, password = data.get("email"), data.get("password")
        if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            problems.append("email must be an email")
        if not email:
            problems.append("email should not be empty")
        if not password:
            problems.append("password should not be empty")
        problems += [f"property {k} should not exist" for k in data if k not in ("email", "password")]
        if problems:
            return JSONResponse({"statusCode": 400, "message": problems, "error": "Bad Request"}, status_code=400)
        if email != SMOKE_USER or password != SMOKE_PASSWORD:
            return JSONResponse({"statusCode": 401, "message": "Unauthorized"}, status_code=401)
        token = make_jwt(SMOKE_USER, 3600)
        faults.tokens.append(token)
        return JSONResponse({"access_token": token}, status_code=201)

    return Starlette(routes=[Route("/auth/login", login, methods=["POST"])])
