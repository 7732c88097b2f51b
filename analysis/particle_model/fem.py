"""Finite-element model of Li transport in the ab-plane of a cylindrical NMC particle (paper Eqs. 10–15).

∂θ/∂t = ∇·(D_eff(θ)∇θ) on the disk of diameter d (the ab-plane cross-section), with an outward
normal flux j_NMC on the open perimeter and j_RSL = η·j_NMC on a rock-salt arc covering a fraction
γ of it (Eq. 14: j_NMC = nQρd / (4F(1 − γ + ηγ))). θ is the Li occupancy, positive flux = Li leaves
(charge). Discretised with P1 triangles (scikit-fem) and implicit Euler; D_eff is taken per element
at its centroid θ, either lagged one step or iterated (Picard) to a tolerance.

Units inside the solver: lengths in µm, time in s, D in µm²/s, boundary flux q = j/N_L in µm/s.
Coordinates are image coordinates (x to the right, y downwards, origin at the particle centre);
``rsl_angle_deg`` is measured from +x towards +y (clockwise as seen on screen).

Mass balance is exact by construction: the boundary flux is rescaled by the discrete arc lengths
so that ∫q ds = |d⟨θ⟩/dt|·A_mesh, and implicit Euler conserves ∫θ up to the linear solve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import threading

from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree
from skfem import Basis, BilinearForm, ElementTriP1, MeshTri

from operascope.analysis.materials import (
    DENSITY_G_CM3,
    FARADAY_C_MOL,
    LITHIUM_SITES_MOL_M3,
    MOLAR_MASS_G_MOL,
    SPECIFIC_CAPACITY_MAH_G,
)
from operascope.analysis.particle_model.transport import MaterialFunctions

#: Initial uniform occupancy of the paper.
INITIAL_THETA = 0.95
_M2_TO_UM2 = 1e12
_M_TO_UM = 1e6


@dataclass(frozen=True)
class RockSaltBoundary:
    """Rock-salt arc: fraction ``gamma`` (0 ≤ γ < 1) of the perimeter passing ``eta`` (0 ≤ η ≤ 1) of the NMC flux,
    centred on ``rsl_angle_deg`` (image coordinates, from +x towards +y)."""

    gamma: float = 0.0
    eta: float = 1.0
    rsl_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        check_rock_salt(self.gamma, self.eta)
        if not math.isfinite(self.rsl_angle_deg):
            raise ValueError(f"rsl_angle_deg must be finite, got {self.rsl_angle_deg!r}")


def check_rock_salt(gamma: float, eta: float) -> None:
    """Raise ValueError unless 0 ≤ γ < 1 and 0 ≤ η ≤ 1."""
    if not (isinstance(gamma, (int, float)) and 0.0 <= gamma < 1.0):
        raise ValueError(f"gamma (rock-salt fraction of the perimeter) must be in [0, 1), got {gamma!r}")
    if not (isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0):
        raise ValueError(f"eta (rock-salt / NMC flux ratio) must be in [0, 1], got {eta!r}")


def check_positive(name: str, value: float, unit: str) -> None:
    """Raise ValueError unless ``value`` is a finite number > 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 {unit}, got {value!r}")


def specific_current_a_g(c_rate: float) -> float:
    """Specific current (A per g of NMC) of a C-rate n: n·Q with Q = 200 mAh/g."""
    return c_rate * SPECIFIC_CAPACITY_MAH_G * 3.6 / 3600.0


def mean_theta_rate_per_s(specific_current: float) -> float:
    """d⟨θ⟩/dt (1/s) for a specific current in A/g (+ = charge): −I·M/F (= −2.02e-4·n at nC)."""
    return -specific_current * MOLAR_MASS_G_MOL / FARADAY_C_MOL


def eq14_fluxes_mol_m2_s(c_rate: float, eta: float, gamma: float, diameter_um: float) -> tuple[float, float]:
    """(j_NMC, j_RSL) of paper Eq. 14 in mol m⁻² s⁻¹ for an exact circle of diameter ``diameter_um``."""
    check_positive("c_rate", c_rate, "(C)")
    check_positive("diameter_um", diameter_um, "µm")
    check_rock_salt(gamma, eta)
    d_m = diameter_um * 1e-6
    charge_a_m3 = c_rate * SPECIFIC_CAPACITY_MAH_G * 3.6 / 3600.0 * DENSITY_G_CM3 * 1e6  # A per m³ of NMC
    j_nmc = charge_a_m3 * d_m / (4.0 * FARADAY_C_MOL * (1.0 - gamma + eta * gamma))
    return j_nmc, eta * j_nmc


class DiskFem:
    """P1 mesh of a disk of radius ``radius_um`` (``MeshTri.init_circle(nrefs)``) and the matrices of the model."""

    def __init__(self, radius_um: float, nrefs: int = 4) -> None:
        check_positive("radius_um", radius_um, "µm")
        if not (isinstance(nrefs, int) and 1 <= nrefs <= 8):
            raise ValueError(f"nrefs (mesh refinements) must be an integer in [1, 8], got {nrefs!r}")
        self.radius_um = float(radius_um)
        self.nrefs = nrefs
        self.mesh = MeshTri.init_circle(nrefs).scaled(self.radius_um)
        self.basis = Basis(self.mesh, ElementTriP1())
        self.n_nodes = self.mesh.p.shape[1]
        self.mass = BilinearForm(lambda u, v, w: u * v).assemble(self.basis).tocsr()
        self._ones_mass = np.asarray(self.mass.sum(axis=0)).ravel()
        self.area_um2 = float(self._ones_mass.sum())
        self._prepare_stiffness()
        self._prepare_boundary()
        self._centroid_tree: cKDTree | None = None

    # ---------------------------------------------------------------- stiffness K(D) = Σ_e D_e K_e
    def _prepare_stiffness(self) -> None:
        grads = [self.basis.basis[i][0].grad for i in range(3)]  # (2, nelems, nqp)
        dx = self.basis.dx  # (nelems, nqp)
        t = self.mesh.t
        local = np.empty((3, 3, t.shape[1]))
        for i in range(3):
            for j in range(3):
                local[i, j] = np.sum(np.sum(grads[i] * grads[j], axis=0) * dx, axis=1)
        rows = np.repeat(t[:, None, :], 3, axis=1).ravel()  # local[i, j, e] -> node t[i, e]
        cols = np.repeat(t[None, :, :], 3, axis=0).ravel()
        self._local_stiffness = local.ravel()
        self._entry_element = np.broadcast_to(np.arange(t.shape[1]), (3, 3, t.shape[1])).ravel()
        pattern = sp.coo_matrix((np.arange(1, rows.size + 1, dtype=float), (rows, cols)), shape=(self.n_nodes,) * 2).tocsr()
        pattern.sum_duplicates()
        self._pattern = sp.csr_matrix((np.zeros(pattern.nnz), pattern.indices, pattern.indptr), shape=pattern.shape)
        # scatter: csr data index of every (i, j, e) entry
        csr_index = sp.csr_matrix((np.arange(pattern.nnz, dtype=float), pattern.indices, pattern.indptr), shape=pattern.shape)
        entry_to_csr = np.asarray(csr_index[rows, cols]).ravel().astype(np.intp)
        self._scatter = sp.csr_matrix(
            (np.ones(rows.size), (entry_to_csr, np.arange(rows.size))), shape=(pattern.nnz, rows.size)
        )
        pattern_rows = np.repeat(np.arange(self.n_nodes), np.diff(self._pattern.indptr))
        self._mass_data = np.asarray(self.mass[pattern_rows, self._pattern.indices]).ravel()

    def system_data(self, dt_s: float, diffusivity_per_element_um2_s: np.ndarray) -> np.ndarray:
        """CSR data (in the stiffness pattern's order) of the implicit-Euler matrix M + dt·K(D)."""
        return self._mass_data + dt_s * (self._scatter @ (self._local_stiffness * diffusivity_per_element_um2_s[self._entry_element]))

    def system(self, dt_s: float, diffusivity_per_element_um2_s: np.ndarray) -> sp.csr_matrix:
        """M + dt·K(D) as a CSR matrix."""
        matrix = self._pattern.copy()
        matrix.data = self.system_data(dt_s, diffusivity_per_element_um2_s)
        return matrix

    def element_theta(self, theta: np.ndarray) -> np.ndarray:
        """θ at each element's centroid (mean of its three nodes)."""
        return theta[self.mesh.t].mean(axis=0)

    def stiffness(self, diffusivity_per_element_um2_s: np.ndarray) -> sp.csr_matrix:
        """∫ D ∇u·∇v with D constant per element (µm²/s)."""
        values = self._local_stiffness * diffusivity_per_element_um2_s[self._entry_element]
        k = self._pattern.copy()
        k.data = self._scatter @ values
        return k

    # ---------------------------------------------------------------- boundary
    def _prepare_boundary(self) -> None:
        facets = self.mesh.boundary_facets()
        nodes = self.mesh.facets[:, facets]  # (2, nf)
        p = self.mesh.p
        self.boundary_facet_nodes = nodes
        a, b = p[:, nodes[0]], p[:, nodes[1]]
        self.boundary_facet_length_um = np.hypot(*(b - a))
        mid = 0.5 * (a + b)
        self._facet_mid_angle = np.arctan2(mid[1], mid[0])
        ang_a, ang_b = np.arctan2(a[1], a[0]), np.arctan2(b[1], b[0])
        self._facet_half_angle = 0.5 * np.abs(np.angle(np.exp(1j * (ang_b - ang_a))))
        self.perimeter_um = float(self.boundary_facet_length_um.sum())
        self.boundary_nodes = np.unique(nodes)
        n_facets = nodes.shape[1]
        self.inner_radius_um = self.radius_um * math.cos(math.pi / n_facets)

    def rock_salt_fraction_per_facet(self, boundary: RockSaltBoundary) -> np.ndarray:
        """Fraction (0..1) of each boundary facet's angular span covered by the rock-salt arc."""
        if boundary.gamma == 0.0:
            return np.zeros_like(self.boundary_facet_length_um)
        centre = math.radians(boundary.rsl_angle_deg)
        rel = np.angle(np.exp(1j * (self._facet_mid_angle - centre)))
        half_arc = math.pi * boundary.gamma
        lo, hi = rel - self._facet_half_angle, rel + self._facet_half_angle
        covered = np.zeros_like(rel)
        for shift in (-2 * math.pi, 0.0, 2 * math.pi):
            covered += np.clip(np.minimum(hi, half_arc + shift) - np.maximum(lo, -half_arc + shift), 0.0, None)
        return np.clip(covered / (2 * self._facet_half_angle), 0.0, 1.0)

    def flux_weights(self, boundary: RockSaltBoundary) -> np.ndarray:
        """Per-facet relative flux (1 on NMC, η on rock salt), normalised so Σ w·L = 1 (1/µm)."""
        rsl = self.rock_salt_fraction_per_facet(boundary)
        w = 1.0 - (1.0 - boundary.eta) * rsl
        return w / float(np.sum(w * self.boundary_facet_length_um))

    def boundary_load(self, facet_flux_um_s: np.ndarray) -> np.ndarray:
        """Nodal vector ∫ q v ds for a flux q (µm/s) constant on each boundary facet."""
        half = 0.5 * facet_flux_um_s * self.boundary_facet_length_um
        load = np.zeros(self.n_nodes)
        np.add.at(load, self.boundary_facet_nodes[0], half)
        np.add.at(load, self.boundary_facet_nodes[1], half)
        return load

    # ---------------------------------------------------------------- outputs
    def mean(self, theta: np.ndarray) -> float:
        """Area average of θ over the mesh."""
        return float(self._ones_mass @ theta) / self.area_um2

    def surface_mean(self, theta: np.ndarray) -> float:
        """Perimeter average of θ."""
        t = theta[self.boundary_facet_nodes]
        return float(np.sum(0.5 * (t[0] + t[1]) * self.boundary_facet_length_um)) / self.perimeter_um

    def probe_matrix(self, x_um: np.ndarray, y_um: np.ndarray) -> sp.csr_matrix:
        """Sparse (points × nodes) P1 interpolation matrix at points (µm); points outside the mesh take the edge value."""
        x = np.asarray(x_um, dtype=float).ravel()
        y = np.asarray(y_um, dtype=float).ravel()
        r = np.hypot(x, y)
        limit = self.inner_radius_um * (1.0 - 1e-9)
        scale = np.where(r > limit, limit / np.maximum(r, 1e-300), 1.0)
        points = np.column_stack([x * scale, y * scale])
        element, bary = self._locate(points)
        rows = np.repeat(np.arange(points.shape[0]), 3)
        cols = self.mesh.t[:, element].T.ravel()
        return sp.csr_matrix((bary.ravel(), (rows, cols)), shape=(points.shape[0], self.n_nodes))

    def _locate(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Containing element and barycentric coordinates (n, 3) of each point (nearest-centroid candidates)."""
        p, t = self.mesh.p, self.mesh.t
        if self._centroid_tree is None:
            self._centroid_tree = cKDTree(p[:, t].mean(axis=1).T)
        n_candidates = min(12, t.shape[1])
        _, candidates = self._centroid_tree.query(points, k=n_candidates)
        best_element = candidates[:, 0].copy()
        best_score = np.full(points.shape[0], -np.inf)
        best_bary = np.zeros((points.shape[0], 3))
        for k in range(n_candidates):
            element = candidates[:, k]
            a, b, c = (p[:, t[i, element]].T for i in range(3))
            v0, v1, v2 = b - a, c - a, points - a
            det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
            l1 = (v2[:, 0] * v1[:, 1] - v2[:, 1] * v1[:, 0]) / det
            l2 = (v0[:, 0] * v2[:, 1] - v0[:, 1] * v2[:, 0]) / det
            bary = np.column_stack([1.0 - l1 - l2, l1, l2])
            score = bary.min(axis=1)  # >= 0 inside
            better = score > best_score
            best_score[better], best_element[better], best_bary[better] = score[better], element[better], bary[better]
        if np.any(best_score < -1e-6):
            raise ValueError("probe points could not be located in the mesh")
        return best_element, best_bary


class DiffusionStepper:
    """Implicit-Euler time stepping of θ on a :class:`DiskFem` with D_eff(θ) per element.

    ``picard_tolerance`` None: D lagged (taken at the start of the step; one solve). Otherwise D is
    iterated to max|Δθ| < tolerance (at most ``max_picard_iterations``). Factorisations are reused
    while dt is unchanged and D has moved less than ``refactor_relative_d`` since the last one
    (lagged mode only).

    Factors are kept per thread: a SuperLU factor belongs to the thread that made it (SciPy tracks its
    allocations per thread, scipy/scipy#15921) and leaks when freed on another, which is what the simulator did
    when engine threads took turns stepping a particle (+222 MB per virtual hour). Each thread now factors, reuses
    and replaces only its own factor. (A banded Cholesky avoided SuperLU but its LAPACK calls woke OpenBLAS
    threads that slowed the rig's other threads on a 2-core machine.)
    """

    def __init__(
        self,
        fem: DiskFem,
        materials: MaterialFunctions,
        initial_theta: float = INITIAL_THETA,
        picard_tolerance: float | None = 1e-8,
        max_picard_iterations: int = 20,
        refactor_relative_d: float = 0.0,
    ) -> None:
        if not 0.0 < initial_theta <= 1.0:
            raise ValueError(f"initial_theta must be in (0, 1], got {initial_theta!r}")
        self.fem = fem
        self.materials = materials
        self.theta = np.full(fem.n_nodes, float(initial_theta))
        self.picard_tolerance = picard_tolerance
        self.max_picard_iterations = max_picard_iterations
        self.refactor_relative_d = refactor_relative_d
        self._factors: dict[int, tuple[float, np.ndarray, object]] = {}   # thread id -> (dt, D, SuperLU factor)
        self.solves = 0
        self.factorisations = 0

    def element_diffusivity_um2_s(self, theta: np.ndarray) -> np.ndarray:
        return self.materials.effective_diffusivity_m2_s(self.fem.element_theta(theta)) * _M2_TO_UM2

    def _solve(self, dt_s: float, d_elem: np.ndarray, rhs: np.ndarray, reuse: bool) -> np.ndarray:
        owner = threading.get_ident()
        self.solves += 1
        key = self._factors.get(owner)
        if not (reuse and key is not None and key[0] == dt_s and np.max(np.abs(d_elem / key[1] - 1.0)) <= self.refactor_relative_d):
            key = None
            self._factors.pop(owner, None)  # this thread's old factor is freed on this thread
            key = (dt_s, d_elem, splu(self.fem.system(dt_s, d_elem).tocsc()))
            self._factors[owner] = key
            self.factorisations += 1
        return key[2].solve(rhs)

    def step(self, dt_s: float, boundary_load: np.ndarray) -> np.ndarray:
        """Advance θ by ``dt_s`` with nodal outward-flux load ``boundary_load`` (from DiskFem.boundary_load)."""
        rhs = self.fem.mass @ self.theta - dt_s * boundary_load
        d_elem = self.element_diffusivity_um2_s(self.theta)
        if self.picard_tolerance is None:
            self.theta = self._solve(dt_s, d_elem, rhs, reuse=True)
            return self.theta
        new = self._solve(dt_s, d_elem, rhs, reuse=False)
        for _ in range(self.max_picard_iterations):
            d_elem = self.element_diffusivity_um2_s(new)
            newer = self._solve(dt_s, d_elem, rhs, reuse=False)
            change = float(np.max(np.abs(newer - new)))
            new = newer
            if change < self.picard_tolerance:
                break
        self.theta = new
        return new


def total_flux_um3_s(fem: DiskFem, specific_current: float) -> float:
    """∫q ds (µm²/s of θ per unit height) removing Li at the rate of ``specific_current`` (A/g) from the meshed disk."""
    return -mean_theta_rate_per_s(specific_current) * fem.area_um2


def facet_flux_um_s(fem: DiskFem, boundary: RockSaltBoundary, specific_current: float) -> np.ndarray:
    """Outward q = j/N_L (µm/s) per boundary facet, rescaled so the total is exact on the mesh."""
    return fem.flux_weights(boundary) * total_flux_um3_s(fem, specific_current)


def facet_flux_mol_m2_s(fem: DiskFem, boundary: RockSaltBoundary, specific_current: float) -> np.ndarray:
    """The same flux as :func:`facet_flux_um_s` in mol m⁻² s⁻¹ (j = q·N_L)."""
    return facet_flux_um_s(fem, boundary, specific_current) / _M_TO_UM * LITHIUM_SITES_MOL_M3
