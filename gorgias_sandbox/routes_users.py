"""Users (agents): create, update (``0`` = the caller), delete, read, list. Writes need an admin (INF)."""

from __future__ import annotations

from gorgias_sandbox.errors import conflict, invalid
from gorgias_sandbox.inputs import checked, page, require_found
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import USER_CREATE, USER_UPDATE
from gorgias_sandbox.state import split_name


def _user_id(call: Call) -> int:
    return call.principal.user_id if call.params[0] == 0 else call.params[0]


def create_user(call: Call) -> Reply:
    """``POST /api/users`` → 201 User; 409 when the email is used by another user (INF).

    ``channels``, ``customer``, ``data`` and ``roles`` are rejected (400) like any unknown field.
    """
    values = checked(call.body, USER_CREATE, "Failed to create user")
    if values["email"].lower() in call.account.users_by_email:
        raise conflict()
    return Reply(201, call.account.add_user(values, call.now))


def update_user(call: Call) -> Reply:
    """``PUT /api/users/{id}`` → 202 User. Changing the email needs ``password_confirmation``."""
    account = call.account
    uid = _user_id(call)
    user = require_found(account.users.get(uid))
    values = checked(call.body, USER_UPDATE, "Failed to update user", require=False)
    email = values.get("email")
    if email is not None and email.lower() != user["email"].lower():
        if "password_confirmation" not in values:
            raise invalid("Failed to update user", {"password_confirmation": ["Required to change the email."]})
        if email.lower() in account.users_by_email:
            raise conflict()
        del account.users_by_email[user["email"].lower()]
        account.users_by_email[email.lower()] = uid
    if "new_password" in values and "old_password" not in values:
        raise invalid("Failed to update user", {"old_password": ["Required to change the password."]})
    for key in ("password_confirmation", "old_password", "new_password"):
        values.pop(key, None)
    if "name" in values and not {"firstname", "lastname"} & values.keys():
        user["firstname"], user["lastname"] = split_name(values["name"])
    user.update(values)
    user["updated_datetime"] = call.now
    return Reply(202, user)


def delete_user(call: Call) -> Reply:
    """``DELETE /api/users/{id}`` → 204 (INF status). The bot and the caller cannot be deleted (400, INF)."""
    account = call.account
    uid = _user_id(call)
    user = require_found(account.users.get(uid))
    if uid in (account.bot_user_id, call.principal.user_id):
        raise invalid("Failed to delete user", {"id": ["This user cannot be deleted."]})
    del account.users[uid]
    account.users_by_email.pop(user["email"].lower(), None)
    return Reply(204)


def get_user(call: Call) -> Reply:
    """``GET /api/users/{id}`` (``0`` = the caller)."""
    return Reply(200, require_found(call.account.users.get(_user_id(call))))


def list_users(call: Call) -> Reply:
    """``GET /api/users``."""
    return Reply(200, page(call.query, call.path, list(call.account.users.values())))


ROUTES = [
    Route("POST", "/api/users", create_user, admin_only=True),
    Route("GET", "/api/users", list_users),
    Route("PUT", "/api/users/{id}", update_user, admin_only=True),
    Route("DELETE", "/api/users/{id}", delete_user, admin_only=True),
    Route("GET", "/api/users/{id}", get_user),
]
