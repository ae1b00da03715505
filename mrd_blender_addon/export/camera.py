"""The views: a lattice around the object, or exactly the scene's camera."""
from __future__ import annotations

import math

import numpy as np

from ..client import backend
from .errors import ExportError


def camera_rig(camera_obj=None, scene=None, views: int = 8, width: int = 128, height: int = 128,
               fov: float = 45.0, notes: list | None = None):
    """A CameraRig: `views` lattice views around the object (up +Z), or exactly the Blender camera given."""
    cams = backend().scene.cameras
    if camera_obj is None:
        return cams.CameraRig(n_views=views, fov=fov, width=width, height=height)
    if camera_obj.type != "CAMERA":
        raise ExportError(f"{camera_obj.name!r} is not a camera")
    cam = camera_obj.data
    notes = [] if notes is None else notes
    if cam.type != "PERSP":
        notes.append(f"camera {camera_obj.name!r} is {cam.type.lower()}: exported as perspective")
    if abs(cam.shift_x) > 1e-6 or abs(cam.shift_y) > 1e-6:
        notes.append(f"camera {camera_obj.name!r}: lens shift is ignored")
    fit = cam.sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if width >= height else "VERTICAL"
        sensor = cam.sensor_width
    else:
        sensor = cam.sensor_width if fit == "HORIZONTAL" else cam.sensor_height
    half = math.atan(sensor / (2 * cam.lens))
    fov_x = 2 * half if fit == "HORIZONTAL" else 2 * math.atan(math.tan(half) * width / height)
    m = cams.blender_camera_to_world(np.array(camera_obj.matrix_world, np.float64))
    return cams.CameraRig(n_views=1, fov=math.degrees(fov_x), width=width, height=height, matrices=[m.tolist()])
