"""The scene as plain numpy data: SceneSpec and its material, cameras, environment, lamps and meshes, and the
.npz file that carries it between Blender and the worker. The only part of the backend Blender's Python imports, so
nothing here imports Mitsuba or torch at module level (rendering helpers import Mitsuba inside the function)."""
