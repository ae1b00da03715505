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


def steady_guiding(integrator) -> bool:
    """Applies both levers to a projective integrator's guiding set-up; True if it has one."""
    import drjit as dr
    from .variant import mitsuba
    detail = getattr(integrator, "proj_detail", None)
    if detail is None or not hasattr(detail, "init_indirect_silhouette"):
        return False
    mi = mitsuba()
    original = detail.init_indirect_silhouette
    octree = sized_octree_class()

    def init_indirect_silhouette(*args, **kwargs):
        threshold, shipped = dr.expand_threshold(), mi.ad.OcSpaceDistr
        dr.set_expand_threshold(0)
        mi.ad.OcSpaceDistr = octree     # looked up by name when the set-up builds its octree
        try:
            return original(*args, **kwargs)
        finally:
            mi.ad.OcSpaceDistr = shipped
            dr.set_expand_threshold(threshold)
    detail.init_indirect_silhouette = init_indirect_silhouette
    return True
