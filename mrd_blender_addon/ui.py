"""UI glue of a running job (interactive sessions only): the status-bar text, redraws, reports into the Info
editor, and the undo step that closes a run. Every call is cosmetic: a closing window must never break a run."""
from __future__ import annotations

import bpy


def windows():
    wm = bpy.context.window_manager
    return list(getattr(wm, "windows", []) or [])


def status_text(win, text):
    try:
        with bpy.context.temp_override(window=win):
            win.workspace.status_text_set(text)
    except Exception:   # a window closing or without a workspace: the status line is cosmetic
        pass


def update(job):
    text = job.progress_text() if job.active else None
    for win in windows():
        status_text(win, text)
        for area in win.screen.areas:
            if area.type in ("VIEW_3D", "IMAGE_EDITOR", "PROPERTIES"):
                area.tag_redraw()


def report(level, message):
    for win in windows()[:1]:
        try:
            with bpy.context.temp_override(window=win):
                bpy.ops.mrd.report("EXEC_DEFAULT", level=level, message=message)
        except Exception:
            pass


def undo_push(message: str):
    for win in windows()[:1]:
        try:
            with bpy.context.temp_override(window=win):
                bpy.ops.ed.undo_push(message=message)
        except Exception:
            pass
