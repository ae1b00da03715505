"""Mitsuba's guiding set-up for indirect silhouettes, made cheaper without changing what it computes.

`direct_projective` (and `prb_projective`) rebuild an octree over boundary-sample space in every backward pass,
for every view. Two costs of that set-up do not depend on the scene, only on how Mitsuba runs it on the LLVM
backend; `steady_guiding` removes both and leaves the octree, its samples and its masses as they were:

- **Kernel recompiles.** The set-up's scatter-reductions (points per octree node, mass per leaf) target arrays whose
  size changes every step. For targets of at most `dr.expand_threshold()` entries, Dr.Jit's `ReduceMode.Expand`
  writes `thread_id * size` into the kernel as a literal, so each new size compiles a new kernel, among them the
  large one that evaluates the integrand in every leaf (0.1-0.4 s each). With the threshold at 0 while the set-up
  runs, they use `ReduceMode.Local`, whose kernels do not depend on the size.
- **Buffers sized for the worst case.** The octree builder allocates and zero-fills three buffers of
  `octree_max_leaf_cnt` (2^24) boxes, about 1.2 GB, at every build, although an octree here has a few hundred
  thousand leaves at most. `SizedOctree` builds with a capacity that fits the octrees seen so far and retries with a
  larger one (up to `octree_max_leaf_cnt`) when a build outgrows it. The builder reads its buffers only below the
  counts it has written and checks the capacity before every level, so the result is the same; only a build that
  would overflow `octree_max_leaf_cnt` itself fails, with Mitsuba's own error, as before.
"""
from __future__ import annotations

FIRST_CAPACITY = 2 ** 18     # boxes; grows by 4x when an octree outgrows it
_OVERFLOW = "exceeds 'max_leaf_count'"


def sized_octree_class():
    """A subclass of Mitsuba's `OcSpaceDistr` that builds with the smallest capacity that has fitted so far."""
    from .variant import mitsuba
    mi = mitsuba()

    class SizedOctree(mi.ad.OcSpaceDistr):
        capacity = FIRST_CAPACITY       # shared by the builds of one integrator (see steady_guiding)
        retries = 0

        def construct_octree(self, points, log=False):
            limit = self.max_leaf_count         # the integrator's octree_max_leaf_cnt
            # the first level splits every pre-partition slab into 8 before the builder checks its capacity
            cap = min(max(type(self).capacity, 8 * self.prepartition_x_slices), limit)
            try:
                while True:
                    self.max_leaf_count = cap
                    try:
                        return super().construct_octree(points, log=log)
                    except RuntimeError as exc:
                        if cap >= limit or _OVERFLOW not in str(exc):
                            raise
                        cap = min(cap * 4, limit)
                        type(self).capacity = cap
                        type(self).retries += 1
            finally:
                self.max_leaf_count = limit     # set_points caps its input points with it: keep Mitsuba's value

    return SizedOctree


class GuidingReuse:
    """Which octree each view's backward pass uses: a fresh one every `every`-th pass of that view, else the view's
    last one. Guiding only shapes where the indirect-silhouette term is sampled (the estimator divides by the
    octree's pdf, render_indirect_silhouette in Mitsuba's ad/integrators/common.py), and the octree lives in
    boundary-sample space, whose coordinates name a shape and an edge of it: a kept octree stays a valid density
    while the vertices move, and is stale once the topology changes. So a build is forced when a silhouette shape's
    face or vertex count changes, and after `forget()` (the loop calls it after a remesh). docs/speed.md."""

    def __init__(self, every: int = 1):
        self.every = max(1, int(every))
        self.views = {}     # id(sensor) -> [sensor, octree, passes since its build, topology]
        self.builds = 0
        self.reuses = 0

    def forget(self):
        """The next backward pass of every view builds its octree afresh (after a remesh)."""
        self.views.clear()

    @staticmethod
    def topology(scene) -> tuple:
        return tuple((int(s.face_count()), int(s.vertex_count())) if hasattr(s, "face_count") else (id(s),)
                     for s in scene.silhouette_shapes())

    def describe(self) -> dict:
        """For report.json; octree_builds counts every set-up run, also those that found no shadow boundary."""
        return {"guiding_every": self.every, "octree_builds": self.builds, "octree_reuses": self.reuses}

    def wrap(self, detail, build):
        def init_indirect_silhouette(scene, sensor, seed, *args, **kwargs):
            if self.every > 1:
                if isinstance(sensor, int):
                    sensor = scene.sensors()[sensor]
                view = self.views.get(id(sensor))
                topology = self.topology(scene)
                if (view is not None and view[0] is sensor and view[3] == topology and view[2] < self.every
                        and view[1] is not None):
                    view[2] += 1
                    self.reuses += 1
                    detail.guiding_distr = view[1]
                    return None
            result = build(scene, sensor, seed, *args, **kwargs)
            self.builds += 1
            if self.every > 1:
                # the sensor is kept so that its id is not reused; a failed build (None) is retried next pass
                self.views[id(sensor)] = [sensor, detail.guiding_distr, 1, topology]
            return result
        return init_indirect_silhouette


def steady_guiding(integrator, every: int = 1):
    """Applies both levers to a projective integrator's guiding set-up, and keeps each view's octree for `every`
    backward passes (1: a fresh one every pass, as Mitsuba does). Returns the GuidingReuse (its `forget()` forces
    rebuilds) if the integrator has a guiding set-up, else False."""
    import drjit as dr
    from .variant import mitsuba
    detail = getattr(integrator, "proj_detail", None)
    if detail is None or not hasattr(detail, "init_indirect_silhouette"):
        return False
    mi = mitsuba()
    original = detail.init_indirect_silhouette
    octree = sized_octree_class()

    def build(*args, **kwargs):
        threshold, shipped = dr.expand_threshold(), mi.ad.OcSpaceDistr
        dr.set_expand_threshold(0)
        mi.ad.OcSpaceDistr = octree     # looked up by name when the set-up builds its octree
        try:
            return original(*args, **kwargs)
        finally:
            mi.ad.OcSpaceDistr = shipped
            dr.set_expand_threshold(threshold)
    reuse = GuidingReuse(every)
    detail.init_indirect_silhouette = reuse.wrap(detail, build)
    return reuse
