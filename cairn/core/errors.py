"""Every failure Cairn reports, each a class with a stable wire `code` and HTTP `status`.

The transport maps these to `{"error": {"code", "message", "field"}}` in one place.
Expected outcomes (a miss, a treasure already taken) are results, not exceptions.
"""

from __future__ import annotations


class CairnError(Exception):
    """Base of every error that reaches a client; `code` is stable, `message` is for people."""

    code: str = "error"
    status: int = 400

    def __init__(self, message: str, field: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def to_wire(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return {"error": body}


class BadRequest(CairnError):
    code, status = "bad_request", 400


class InvalidBody(CairnError):
    code, status = "invalid_body", 400


class Unauthorized(CairnError):
    code, status = "unauthorized", 401


class Forbidden(CairnError):
    code, status = "forbidden", 403


class NotFound(CairnError):
    code, status = "not_found", 404


class HuntNotFound(CairnError):
    code, status = "hunt_not_found", 404


class GrantNotFound(CairnError):
    code, status = "grant_not_found", 404


class HuntExists(CairnError):
    code, status = "hunt_exists", 409


class WorldNotFound(CairnError):
    code, status = "world_not_found", 404


class WorldInUse(CairnError):
    code, status = "world_in_use", 409


class WorldConfigured(CairnError):
    code, status = "world_configured", 409


class HuntNotActive(CairnError):
    code, status = "hunt_not_active", 409


class BodyTooLarge(CairnError):
    code, status = "body_too_large", 413


class ValidationError(CairnError):
    code, status = "validation_error", 422


class UnknownField(ValidationError):
    code = "unknown_field"


class OutOfBounds(CairnError):
    code, status = "out_of_bounds", 422


class OutOfReach(CairnError):
    code, status = "out_of_reach", 422


class ImplausibleMovement(CairnError):
    code, status = "implausible_movement", 422


class PlacementInfeasible(CairnError):
    code, status = "placement_infeasible", 422


class UnknownWorld(CairnError):
    code, status = "unknown_world", 422


class UnknownLootTable(CairnError):
    code, status = "unknown_loot_table", 422


class UnknownLeaderboard(CairnError):
    code, status = "unknown_leaderboard", 422


class RateLimited(CairnError):
    code, status = "rate_limited", 429


class HintCooldown(CairnError):
    code, status = "hint_cooldown", 429


class PlayerNotJoined(CairnError):
    """Strict players (`limits.strict_players`): a player hints or digs before any position update."""

    code, status = "player_not_joined", 409


class TooManyPlayers(CairnError):
    """The engine tracks `limits.max_players` players already; idle ones are forgotten over time."""

    code, status = "too_many_players", 429


class KeyQuota(CairnError):
    """A key went past its quota of digs, hints or new players per second, over all its players."""

    code, status = "key_quota", 429


class StoreUnavailable(CairnError):
    code, status = "store_unavailable", 503


class ReasonRequired(CairnError):
    """An operator's action without a `reason`: every action is audited with one."""

    code, status = "reason_required", 400


class PlayerBarred(CairnError):
    """An operator barred this player from hunts (`POST /v1/players/{player}/bar`)."""

    code, status = "player_barred", 403


class AdminConflict(CairnError):
    """An operator's action that the state refuses: already done, or not possible now (the message says)."""

    code, status = "conflict", 409


class InvalidCursor(CairnError):
    """A page cursor that this server did not hand out (or that was altered)."""

    code, status = "invalid_cursor", 400


# ---- undoing and adjusting (claims, grants, hunts) -----------------------------------------------------
class ClaimNotFound(CairnError):
    code, status = "claim_not_found", 404


class ClaimVoided(CairnError):
    """An operator voided this claim already (`POST /v1/claims/{claim_id}/void`)."""

    code, status = "claim_voided", 409


class GrantAcked(CairnError):
    """The grant was delivered already: only a pending grant can be cancelled."""

    code, status = "grant_acked", 409


class GrantCancelled(CairnError):
    """An operator cancelled this grant (or voided its claim): it can no longer be acked or cancelled."""

    code, status = "grant_cancelled", 409


class HuntPaused(CairnError):
    """An operator paused the hunt: digs and hints wait until it is resumed."""

    code, status = "hunt_paused", 409


class HuntNotEnded(CairnError):
    """Only an ended hunt can be archived (`DELETE /v1/hunts/{hunt}`)."""

    code, status = "hunt_not_ended", 409


# ---- API keys (cairn/core/keys.py) -------------------------------------------------------------------
class KeyNotFound(CairnError):
    code, status = "key_not_found", 404


class KeyRevoked(CairnError):
    """The key was revoked, or its rotation's overlap has ended."""

    code, status = "key_revoked", 409


class LastAdminKey(CairnError):
    """Revoking this key would leave no admin key: the operator would be locked out."""

    code, status = "last_admin_key", 409


class LabelTaken(CairnError):
    code, status = "label_taken", 409
