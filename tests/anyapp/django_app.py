"""A real Django + Django REST framework backend, run as its own process under uvicorn:
`python django_app.py PORT DBFILE`. Logins as Django and DRF apps have them:

- `/api-token-auth/`: DRF's own `obtain_auth_token` (form or JSON `username`/`password` → `{"token"}`; a wrong
  password is a 400 `non_field_errors`, a missing field a 400 naming it); the token is presented as
  `Authorization: Token <key>` (TokenAuthentication; a Bearer gets 401 with `WWW-Authenticate: Token`);
- `/accounts/login/`: Django's own `LoginView`, a session login behind CsrfViewMiddleware (the csrftoken cookie
  sent back as X-CSRFToken; a wrong password re-renders the form with 200; a 302 with `sessionid` logs in);
- `/api/users/login`: a RealWorld-style login on a DRF serializer, body `{"user": {"email", "password"}}`,
  answer `{"user": {"token"}}`, a wrong password 422 `{"errors": {"email or password": ["is invalid"]}}`;
- `/api/me/`, `/api/items/` (IsAuthenticated; items read a table of their own), `/api/tags/` (AllowAny),
  no health endpoint (`/` is Django's 404).

Faults, toggled with `POST /_fault/NAME/on|off` (test only): `users` renames auth_user away (every login fails
with a 500 behind it), `items` renames the items table away (a logged-in items request answers 500).
"""

from __future__ import annotations

import sys

import django
from django.conf import settings

SMOKE_USER = "smoke"
SMOKE_EMAIL = "smoke@example.com"


def configure(db: str) -> None:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="opscheck-test-django-secret-0123456789abcdef",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                        "rest_framework", "rest_framework.authtoken"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.middleware.common.CommonMiddleware",
                    "django.middleware.csrf.CsrfViewMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}},
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "OPTIONS": {"loaders": [(
            "django.template.loaders.locmem.Loader",
            {"registration/login.html": "<form method=post>{% csrf_token %}{{ form }}</form>"})]}}],
        REST_FRAMEWORK={"DEFAULT_AUTHENTICATION_CLASSES": [
            "rest_framework.authentication.TokenAuthentication",
            "rest_framework.authentication.SessionAuthentication"]},
        LOGIN_REDIRECT_URL="/api/me/",
        USE_TZ=True,
        LOGGING_CONFIG=None,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # a test: no slow hashing
    )
    django.setup()


def _urls() -> list[object]:
    from django.contrib.auth import authenticate
    from django.contrib.auth.views import LoginView
    from django.db import connection
    from django.http import HttpResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt
    from rest_framework import serializers, status
    from rest_framework.authtoken.models import Token
    from rest_framework.authtoken.views import obtain_auth_token
    from rest_framework.decorators import api_view, authentication_classes, permission_classes
    from rest_framework.permissions import AllowAny, IsAuthenticated
    from rest_framework.response import Response

    class Inner(serializers.Serializer):
        email = serializers.EmailField()
        password = serializers.CharField()

    class Outer(serializers.Serializer):
        user = Inner()

    @api_view(["POST"])
    @authentication_classes([])
    @permission_classes([AllowAny])
    def realworld_login(request):  # type: ignore[no-untyped-def]
        body = Outer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = body.validated_data["user"]
        from django.contrib.auth.models import User

        found = User.objects.filter(email=fields["email"]).first()
        user = authenticate(username=found.username, password=fields["password"]) if found else None
        if user is None:
            return Response({"errors": {"email or password": ["is invalid"]}}, status=422)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"user": {"email": user.email, "username": user.username, "token": token.key}})

    @api_view(["GET"])
    @permission_classes([IsAuthenticated])
    def me(request):  # type: ignore[no-untyped-def]
        return Response({"username": request.user.username})

    @api_view(["GET"])
    @permission_classes([IsAuthenticated])
    def items(request):  # type: ignore[no-untyped-def]
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, title FROM items")
            rows = cursor.fetchall()
        return Response([{"id": i, "title": t} for i, t in rows])

    @api_view(["GET"])
    @permission_classes([AllowAny])
    def tags(request):  # type: ignore[no-untyped-def]
        return Response({"tags": ["ops", "django"]})

    renames = {"users": ("auth_user", "auth_user_gone"), "items": ("items", "items_gone")}

    @csrf_exempt
    def fault(request, name, state):  # type: ignore[no-untyped-def]
        before, after = renames[name]
        if state == "off":
            before, after = after, before
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {before} RENAME TO {after}")
        return HttpResponse(status=status.HTTP_204_NO_CONTENT)

    return [
        path("api-token-auth/", obtain_auth_token),
        path("accounts/login/", LoginView.as_view()),
        path("api/users/login", realworld_login),
        path("api/me/", me),
        path("api/items/", items),
        path("api/tags/", tags),
        path("_fault/<str:name>/<str:state>", fault),
    ]


def seed(password: str, api_token: str) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token

    call_command("migrate", verbosity=0, interactive=False)
    user = User.objects.create_user(SMOKE_USER, SMOKE_EMAIL, password)
    Token.objects.create(user=user, key=api_token)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE items (id integer primary key, title text)")
        cursor.execute("INSERT INTO items VALUES (1, 'first')")


urlpatterns: list[object] = []

if __name__ == "__main__":
    port, db, password, api_token = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    configure(db)
    urlpatterns.extend(_urls())
    seed(password, api_token)
    import uvicorn
    from django.core.asgi import get_asgi_application

    uvicorn.run(get_asgi_application(), host="127.0.0.1", port=int(port), log_level="warning", lifespan="off")
