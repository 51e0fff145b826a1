"""The first-boot screen's commands: a scanned enrolment QR and a code typed on the keypad.

Both only queue the attempt (202) and answer the state: progress and the outcome reach every
open screen over the WebSocket, because an enrolment takes a few round trips to the cloud and
must not depend on this request staying open.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from edge.kiosk.api import get_screen
from edge.kiosk.enrolment_desk import MAX_SCAN, DeskBusy
from edge.kiosk.screen import Screen

router = APIRouter(prefix="/api/enrolment")
ScreenDep = Annotated[Screen, Depends(get_screen)]


class Scanned(BaseModel):
    text: str = Field(max_length=MAX_SCAN)


class Typed(BaseModel):
    code: str = Field(max_length=32)


@router.post("/scan")
async def scan(body: Scanned, screen: ScreenDep) -> JSONResponse:
    return _submit(screen, body.text, typed=False)


@router.post("/code")
async def code(body: Typed, screen: ScreenDep) -> JSONResponse:
    return _submit(screen, body.code, typed=True)


def _submit(screen: Screen, text: str, *, typed: bool) -> JSONResponse:
    desk = screen.first_boot
    if desk is None or screen.enrolled:
        message = "This register is already enrolled." if screen.enrolled else "No enrolment here."
        return _refused(screen, "enrolled" if screen.enrolled else "no_first_boot", message)
    try:
        desk.submit(text, typed=typed)
    except DeskBusy as err:
        return _refused(screen, "busy", str(err))
    return JSONResponse({"state": screen.state()}, status_code=202)


def _refused(screen: Screen, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}, "state": screen.state()}, status_code=409
    )
