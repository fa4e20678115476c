"""Vectorised rasteriser: population parameters -> uint8 face images, natively at any size.

Every image of a chunk is drawn at once.  Each pixel centre is mapped into the face frame of its
own image (inverse pose: translation, rotation, scale), and each facial part is an anti-aliased
shape evaluated on those coordinates: a first-order signed distance to an ellipse (or a box)
times the pixel's size in face units gives the pixel's coverage.  Parts are alpha-blended back
to front; then illumination, blur and noise are applied per image.  Nothing is drawn at a higher
resolution and downscaled, so a 32-pixel image costs a quarter of a 64-pixel one.

Two things keep it fast: a part is evaluated only inside the pixel window that contains it in
every image of the chunk (a :class:`Region`), and symmetric pairs (eyes, brows, ears, nostrils,
lenses) are drawn in one pass by mirroring the horizontal coordinate about the face's midline.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: Images per chunk: large enough to amortise numpy's per-call overhead, small enough that a
#: chunk's working arrays stay in cache.  Part of the generator: noise is drawn per chunk.
CHUNK = 128
#: Head half-width as a fraction of the image half-width at scale 1 (CelebA-like framing).
FACE_SCALE = 0.5
#: Vertical offset of the head centre (image half-heights): leaves room for hair above.
FACE_OFFSET = 0.12

F32 = np.float32
Value = np.ndarray | float


def col(values: Value) -> np.ndarray:
    """Per-image values ``[B]`` shaped ``[B, 1, 1]`` to broadcast over pixels."""
    return np.asarray(values, dtype=F32)[:, None, None]


class Canvas:
    """One chunk of images being painted: face-frame coordinates and a [3, B, S, S] buffer."""

    def __init__(self, params: dict[str, np.ndarray], size: int) -> None:
        self.params = params
        self.size = size
        self.b = len(params["angle"])
        centres = ((np.arange(size, dtype=F32) + 0.5) / size * 2 - 1).astype(F32)
        self.x = centres[None, None, :]  # image coordinates, [1, 1, S]
        self.y = centres[None, :, None]  # [1, S, 1]
        self.cos = np.cos(params["angle"]).astype(F32)
        self.sin = np.sin(params["angle"]).astype(F32)
        #: Image half-widths per face unit, per image.
        self.unit = (params["scale"] * FACE_SCALE).astype(F32)
        self.cx = params["tx"].astype(F32)
        self.cy = (params["ty"] + FACE_OFFSET).astype(F32)
        k = col(1.0 / self.unit)
        xr = self.x - col(self.cx)
        yr = self.y - col(self.cy)
        # Inverse pose: rotate by -angle, then divide by the face's scale.
        self.u = ((col(self.cos) * xr + col(self.sin) * yr) * k).astype(F32)
        self.v = ((col(self.cos) * yr - col(self.sin) * xr) * k).astype(F32)
        #: Reciprocal of the pixel size in face units (for anti-aliasing), per image.
        self.inv_px = (size * self.unit / 2).astype(F32)
        self.img = np.empty((3, self.b, size, size), dtype=F32)

    def region(
        self,
        cu: Value,
        cv: Value,
        reach: Value,
        *,
        mirror: Value | None = None,
        rows: np.ndarray | None = None,
    ) -> Region:
        """The pixel window holding a part centred at ``(cu, cv)`` (face units) in every image.

        ``reach`` bounds the part's extent from its centre; with ``mirror`` the part also appears
        reflected about the vertical line ``u = mirror``.  ``rows`` restricts the region to
        those images of the chunk (parts only some images have: hats, glasses).
        """
        pick = np.arange(self.b) if rows is None else rows

        def per_image(value: Value) -> np.ndarray:
            return np.broadcast_to(np.asarray(value, dtype=F32).reshape(-1), (self.b,))[pick]

        cu_, cv_, reach_ = per_image(cu), per_image(cv), per_image(reach)
        cos, sin, unit = self.cos[pick], self.sin[pick], self.unit[pick]
        centres = [cu_] if mirror is None else [per_image(mirror) + cu_, per_image(mirror) - cu_]
        xs = [self.cx[pick] + unit * (cos * c - sin * cv_) for c in centres]
        ys = [self.cy[pick] + unit * (sin * c + cos * cv_) for c in centres]
        extent = reach_ * unit

        def span(centre: list[np.ndarray]) -> slice:
            lo = min(float((c - extent).min()) for c in centre)
            hi = max(float((c + extent).max()) for c in centre)
            # Image coordinate -> pixel index, with a pixel of margin for the anti-aliased edge.
            first = int(np.floor((lo + 1) * self.size / 2 - 0.5)) - 1
            last = int(np.ceil((hi + 1) * self.size / 2 - 0.5)) + 2
            return slice(max(first, 0), max(min(last, self.size), max(first, 0)))

        return Region(self, rows, (span(ys), span(xs)))

    def full(self) -> Region:
        """The whole image, every image of the chunk."""
        return Region(self, None, (slice(None), slice(None)))

    def fill(self, rgb: np.ndarray) -> None:
        """Set every pixel of each image to its colour ``rgb`` [B, 3]."""
        self.img[...] = rgb.T[:, :, None, None]


class Region:
    """A window of pixels in some images of a chunk, where one part is drawn."""

    def __init__(self, canvas: Canvas, rows: np.ndarray | None, window: tuple[slice, slice]):
        self.canvas, self.rows, self.window = canvas, rows, window
        ys, xs = window
        u, v = canvas.u[:, ys, xs], canvas.v[:, ys, xs]
        inv_px = canvas.inv_px
        if rows is not None:
            u, v, inv_px = u[rows], v[rows], inv_px[rows]
        self.u, self.v = u, v
        self.inv_px = col(inv_px)
        self.empty = u.size == 0

    def p(self, name: str) -> np.ndarray:
        """Parameter ``name`` for this region's images, shaped ``[B', 1, 1]``."""
        values = self.canvas.params[name]
        return col(values if self.rows is None else values[self.rows])

    # -- shapes -------------------------------------------------------------------------------

    def ellipse_distance(
        self,
        cu: Value,
        cv: Value,
        a: Value,
        b: Value,
        *,
        mirror: Value | None = None,
        angle: np.ndarray | None = None,
        bend: np.ndarray | None = None,
    ) -> np.ndarray:
        """Approximate signed distance (face units) to an ellipse, negative inside.

        ``mirror`` (a midline) draws the shape on both sides of it; ``angle`` rotates the
        ellipse; ``bend`` curves it (``v -> v + bend * u**2``, a smile).
        """
        du = self.u - cu if mirror is None else np.abs(self.u - mirror) - cu
        dv = self.v - cv
        if angle is not None:
            c, s = np.cos(angle), np.sin(angle)
            du, dv = c * du + s * dv, c * dv - s * du
        if bend is not None:
            dv += bend * du * du
        inv_a, inv_b = F32(1) / np.asarray(a, F32), F32(1) / np.asarray(b, F32)
        du *= inv_a  # x = du / a
        dv *= inv_b  # y = dv / b
        # With f = x^2 + y^2, d ~ (f - 1) / |grad f| is exact on the boundary, and grad f / 2 =
        # (x / a, y / b).  In place: numpy temporaries dominate the cost at these sizes.
        gx = du * inv_a
        gy = dv * inv_b
        gx *= gx
        gy *= gy
        gx += gy
        np.sqrt(gx, out=gx)
        gx += F32(1e-4)
        du *= du
        dv *= dv
        du += dv
        du -= 1
        du /= gx
        du *= F32(0.5)
        return du

    def coverage(self, distance: np.ndarray) -> np.ndarray:
        """Pixel coverage in [0, 1] from a signed distance (a one-pixel anti-aliased edge)."""
        out = distance * -self.inv_px
        out += F32(0.5)
        return np.clip(out, 0, 1, out=out)

    def ellipse(self, *args: Value, **kwargs: Value | None) -> np.ndarray:
        """Coverage of an ellipse (see :meth:`ellipse_distance` for the arguments)."""
        return self.coverage(self.ellipse_distance(*args, **kwargs))

    def below(self, v0: Value) -> np.ndarray:
        """Coverage of ``v > v0`` (``v0`` may vary per pixel)."""
        return self.coverage(v0 - self.v)

    def box(
        self, cu: Value, cv: Value, hw: Value, hh: Value, *, mirror: Value | None = None
    ) -> np.ndarray:
        """Coverage of an axis-aligned box (face frame) centred at ``(cu, cv)``, half sizes."""
        du = np.abs(self.u - cu) if mirror is None else np.abs(np.abs(self.u - mirror) - cu)
        return self.coverage(np.maximum(du - hw, np.abs(self.v - cv) - hh))

    # -- painting ------------------------------------------------------------------------------

    def paint(self, cover: np.ndarray, rgb: np.ndarray, alpha: Value | None = None) -> None:
        """Blend ``rgb`` over the region where ``cover`` > 0.

        ``rgb`` is one colour ``[3]`` or a colour per image of the chunk ``[B, 3]``; ``alpha``
        a scalar or per chunk image ``[B]``.
        """
        if self.empty:
            return
        if alpha is not None:
            if isinstance(alpha, np.ndarray):
                alpha = col(alpha if self.rows is None else alpha[self.rows])
            cover = cover * alpha
        rgb = np.asarray(rgb, dtype=F32)
        if rgb.ndim == 2 and self.rows is not None:
            rgb = rgb[self.rows]
        ys, xs = self.window
        for c in range(3):
            colour = rgb[c] if rgb.ndim == 1 else col(rgb[:, c])
            view = self.canvas.img[c, :, ys, xs]
            if self.rows is None:
                view += cover * (colour - view)
            else:
                sub = view[self.rows]
                sub += cover * (colour - sub)
                view[self.rows] = sub


def _flagged(params: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    """Indices of the chunk's images where ``params[name] > 0`` (None when there are none)."""
    rows = np.flatnonzero(params[name] > 0)
    return rows if len(rows) else None


def _draw_scene(cv: Canvas, p: dict[str, np.ndarray]) -> None:
    """Background, clothing, hair behind the head, neck, ears, head, cheeks, hair, mole."""
    # Background: per-image colour, a linear gradient, and a soft clutter blob.
    cv.fill(p["bg"])
    cv.img += (col(p["bg_grad"][:, 0]) * cv.x + col(p["bg_grad"][:, 1]) * cv.y)[None]
    blob = ((cv.x - col(p["blob_xy"][:, 0])) / col(p["blob_r"][:, 0])) ** 2
    blob = blob + ((cv.y - col(p["blob_xy"][:, 1])) / col(p["blob_r"][:, 1])) ** 2
    cv.full().paint(np.clip(1.5 - blob, 0, 1), p["blob"], alpha=0.8)

    head_a, head_b = p["head_a"], p["head_b"]
    # Clothing.
    r = cv.region(0.0, head_b + 1.25, 2.0)
    r.paint(r.ellipse(0.0, r.p("head_b") + 1.25, 2.0, 0.8), p["cloth"])
    # Hair that falls behind the head (down to the shoulders when long).
    hairy = _flagged(p, "has_hair")
    if hairy is not None:
        top = -head_b - p["hair_volume"]
        centre = (top + p["hair_bottom"]) / 2
        half_w = head_a + p["hair_volume"] + 0.06
        half_h = (p["hair_bottom"] - top) / 2
        r = cv.region(0.0, centre, np.maximum(half_w, half_h), rows=hairy)
        pick = r.rows
        r.paint(r.ellipse(0.0, col(centre[pick]), col(half_w[pick]), col(half_h[pick])), p["hair"])
    # Neck.
    neck_v = head_b * 0.6 + 1.0
    r = cv.region(0.0, neck_v, head_a * 0.42 + 1.1)
    r.paint(r.box(0.0, r.p("head_b") * 0.6 + 1.0, r.p("head_a") * 0.42, 1.1), p["skin"] * 0.8)
    # Ears.
    r = cv.region(head_a * 0.97, p["eye_y"] + 0.15, p["ear"], mirror=0.0)
    ear = r.p("ear")
    r.paint(
        r.ellipse(r.p("head_a") * 0.97, r.p("eye_y") + 0.15, ear * 0.6, ear, mirror=0.0),
        p["skin"] * 0.88,
    )
    # Head, with a jaw that narrows towards the chin.
    r = cv.region(0.0, 0.0, np.maximum(head_a, head_b))
    taper = 1 - r.p("jaw_taper") * np.clip(r.v / r.p("head_b"), 0, 1)
    r.paint(r.ellipse(0.0, 0.0, r.p("head_a") * taper, r.p("head_b")), p["skin"])
    # Chubby cheeks: round flushed patches.
    cheeky = _flagged(p, "cheek")
    if cheeky is not None:
        r = cv.region(head_a * 0.55, 0.3, 0.3, mirror=0.0, rows=cheeky)
        flush = p["skin"] * 0.8 + np.array([0.2, 0.0, 0.0], dtype=F32)
        r.paint(r.ellipse(r.p("head_a") * 0.55, 0.3, 0.3, 0.22, mirror=0.0), flush, p["cheek"])
    # Hair on the head: the head's outline grown by the hair volume, above a hairline that dips
    # at the temples and is shifted by the parting.
    if hairy is not None:
        grown_a, grown_b = head_a + p["hair_volume"], head_b + p["hair_volume"]
        r = cv.region(0.0, -p["hair_volume"] * 0.5, np.maximum(grown_a, grown_b), rows=hairy)
        outline = r.ellipse(
            0.0,
            -r.p("hair_volume") * 0.5,
            r.p("head_a") + r.p("hair_volume"),
            r.p("head_b") + r.p("hair_volume"),
        )
        line = r.p("hairline") + 0.55 * r.u * r.u + r.p("hair_part") * r.u
        r.paint(outline * (1 - r.below(line)), p["hair"])
    # A mole.
    moled = _flagged(p, "mole")
    if moled is not None:
        mole_u = p["mole_u"] * head_a * 0.8
        r = cv.region(mole_u, p["mole_v"], 0.05, rows=moled)
        r.paint(r.ellipse(col(mole_u[r.rows]), r.p("mole_v"), 0.045, 0.045), p["skin"] * 0.35)


def _draw_features(cv: Canvas, p: dict[str, np.ndarray]) -> None:
    """Nose, eyes, eyebrows and mouth."""
    # Inner features move with the yaw-like head turn: the nose, which sticks out, moves more.
    mid, nose_mid = p["yaw"] * 0.18, p["yaw"] * 0.28
    eye_y, eye_dx, eye_w = p["eye_y"], p["eye_dx"], p["eye_w"]
    # Nose: a shaded ridge and two nostrils.
    nose_top = eye_y + 0.1
    nose_tip = nose_top + p["nose_len"]
    r = cv.region(nose_mid, nose_top + p["nose_len"] / 2, p["nose_len"] / 2 + p["nose_w"])
    half = r.p("nose_len") / 2
    ridge = r.ellipse(col(nose_mid), col(nose_top) + half, r.p("nose_w") * 0.55, half)
    r.paint(ridge, p["skin"] * 0.84, alpha=0.8)
    r = cv.region(p["nose_w"] * 0.45, nose_tip, p["nose_w"] * 0.3, mirror=nose_mid)
    nose_w = r.p("nose_w")
    r.paint(
        r.ellipse(nose_w * 0.45, col(nose_tip), nose_w * 0.28, 0.035, mirror=col(nose_mid)),
        p["skin"] * 0.45,
    )
    # Eyes: whites, irises (following the gaze, clipped to the opening) and pupils.
    r = cv.region(eye_dx, eye_y, eye_w * 1.2, mirror=mid)
    w = r.p("eye_w")
    opening = w * r.p("eye_open")
    white = r.ellipse(r.p("eye_dx"), r.p("eye_y"), w, opening, mirror=col(mid))
    r.paint(white, np.array([0.94, 0.93, 0.9], dtype=F32))
    iris_r = w * 0.5
    # Both eyes look the same way: mirror about the gaze-shifted midline.
    gaze_mid = col(mid) + r.p("gaze_x") * w * 0.35
    iris_v = r.p("eye_y") + r.p("gaze_y") * opening * 0.5
    iris = r.ellipse(r.p("eye_dx"), iris_v, iris_r, iris_r, mirror=gaze_mid)
    r.paint(iris * white, p["iris"])
    pupil = r.ellipse(r.p("eye_dx"), iris_v, iris_r * 0.45, iris_r * 0.45, mirror=gaze_mid)
    r.paint(pupil * white, np.array([0.03, 0.03, 0.03], dtype=F32))
    # Eyebrows.
    brow_v = eye_y - p["brow_gap"] - p["brow_raise"]
    r = cv.region(eye_dx, brow_v, p["brow_len"], mirror=mid)
    brow = r.ellipse(
        r.p("eye_dx"),
        col(brow_v),
        r.p("brow_len"),
        r.p("brow_thick") / 2,
        mirror=col(mid),
        angle=r.p("brow_angle"),
    )
    r.paint(brow, p["brow"])
    # Mouth: lips (curved by the smile), the gap between them (open mouth), teeth when smiling.
    mouth_v = nose_tip + p["mouth_gap"]
    smile = p["smile"]
    mouth_w = p["mouth_w"] * (1 + 0.15 * np.clip(smile, 0, 1))
    lips_b = p["lip_thick"] + p["open"]
    r = cv.region(mid, mouth_v, mouth_w + lips_b + np.abs(0.9 * smile) * mouth_w**2)
    bend = r.p("smile") * 0.9
    centre_u, centre_v, width = col(mid), col(mouth_v), col(mouth_w)
    r.paint(r.ellipse(centre_u, centre_v, width, col(lips_b), bend=bend), p["lips"])
    inner = r.ellipse(centre_u, centre_v, width * 0.82, r.p("open") + 0.012, bend=bend)
    r.paint(inner, np.array([0.22, 0.07, 0.07], dtype=F32))
    toothy = np.flatnonzero((smile > 0.5) & (p["open"] > 0))
    if len(toothy):
        # Teeth are drawn inside the full mouth region (same window) for the smiling, open rows.
        sub = Region(cv, toothy, r.window)
        gap = sub.p("open")
        teeth = sub.ellipse(
            col(mid[toothy]),
            col(mouth_v[toothy]) - gap * 0.45,
            sub.p("mouth_w") * 0.6,
            gap * 0.5,
            bend=sub.p("smile") * 0.9,
        )
        sub.paint(teeth * inner[toothy], np.array([0.92, 0.9, 0.84], dtype=F32))


def _draw_accessories(cv: Canvas, p: dict[str, np.ndarray]) -> None:
    """Glasses, hats and occluding objects, on the images that have them."""
    mid, eye_y = p["yaw"] * 0.18, p["eye_y"]
    # Glasses: two rings around the eyes, a bridge, faintly tinted lenses.
    worn = _flagged(p, "glasses")
    if worn is not None:
        lens_a = F32(0.27)
        r = cv.region(p["eye_dx"], eye_y, lens_a + 0.05, mirror=mid, rows=worn)
        g_mid, g_y, dx = col(mid[worn]), r.p("eye_y"), r.p("eye_dx")
        dist = r.ellipse_distance(dx, g_y, lens_a, lens_a * r.p("frame_round"), mirror=g_mid)
        frame = r.coverage(np.abs(dist) - F32(0.025))
        r.paint(r.coverage(dist), p["frame"] * 0.5 + 0.5, alpha=0.15)
        bridge = r.box(g_mid, g_y - 0.03, np.maximum(dx - lens_a, 0.02), 0.02)
        r.paint(np.maximum(frame, bridge), p["frame"])
    # Hats: a crown over the top of the head and a brim.
    hatted = _flagged(p, "hat")
    if hatted is not None:
        rim_v = -p["head_b"] * 0.42
        r = cv.region(0.0, rim_v - p["hat_h"] / 2, p["head_a"] * 1.45 + p["hat_h"], rows=hatted)
        h_a, h_b, rim = r.p("head_a"), r.p("head_b"), col(rim_v[hatted])
        crown = r.ellipse(0.0, rim, h_a + 0.12, r.p("hat_h") + h_b * 0.58)
        crown *= 1 - r.below(rim)
        brim = r.ellipse(0.0, rim, h_a * 1.45, 0.09)
        r.paint(crown, p["hat_rgb"])
        r.paint(brim, p["hat_rgb"] * 0.8)
    # Occluders: an object in front of part of the face.
    blocked = _flagged(p, "occluded")
    if blocked is not None:
        occ_u, occ_v = p["occ_xy"][:, 0], p["occ_xy"][:, 1] * 1.2 + 0.2
        w, h = p["occ_wh"][:, 0], p["occ_wh"][:, 1]
        r = cv.region(occ_u, occ_v, np.hypot(w, h), rows=blocked)
        pick = r.rows
        cover = r.box(col(occ_u[pick]), col(occ_v[pick]), col(w[pick]), col(h[pick]))
        r.paint(cover, p["occ_rgb"])


def _apply_capture(cv: Canvas, p: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Illumination, blur and sensor noise, per image."""
    direction = col(np.cos(p["light_dir"])) * cv.x + col(np.sin(p["light_dir"])) * cv.y
    light = col(p["gain"]) * (1 + col(p["light"]) * direction)
    for c in range(3):
        factor = light * col(p["cast"][:, c])
        cv.img[c] *= factor
    # Only the images with a visible amount of blur are convolved (half of them have none).
    sigma = p["blur"] * cv.size
    blurred = np.flatnonzero(sigma > 0.1)
    if len(blurred):
        part = cv.img[:, blurred]
        _blur(part, sigma[blurred])
        cv.img[:, blurred] = part
    noise = rng.standard_normal(cv.img.shape, dtype=F32)
    noise *= col(p["noise"])[None]
    cv.img += noise


def _blur(img: np.ndarray, sigma: np.ndarray) -> None:
    """In place separable Gaussian blur of [3, B, S, S] with a per-image ``sigma`` (pixels)."""
    radius = int(np.ceil(3 * sigma.max()))
    taps = np.arange(-radius, radius + 1, dtype=F32)
    safe = np.maximum(sigma, 1e-3)[:, None]
    weights = np.exp(-0.5 * (taps[None, :] / safe) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    weights = weights.astype(F32)
    size = img.shape[-1]
    for axis in (3, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded = np.pad(img, pad, mode="edge")
        img[...] = 0
        for k in range(2 * radius + 1):
            window = padded[:, :, k : k + size, :] if axis == 2 else padded[..., k : k + size]
            img += window * weights[:, k][None, :, None, None]


def render_chunk(params: dict[str, np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """Render one chunk of images described by ``params`` (per-image arrays): [B, S, S, 3]."""
    cv = Canvas(params, size)
    _draw_scene(cv, params)
    _draw_features(cv, params)
    _draw_accessories(cv, params)
    _apply_capture(cv, params, rng)
    out = np.clip(cv.img, 0, 1, out=cv.img)
    out *= 255
    out += 0.5
    return np.ascontiguousarray(out.astype(np.uint8).transpose(1, 2, 3, 0))


def render_images(
    params: dict[str, np.ndarray],
    size: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """Render every image described by ``params`` (per-image arrays) at ``size`` pixels.

    Chunks are rendered on a thread pool (numpy releases the GIL in its array loops); noise for
    chunk ``i`` comes from its own stream ``(seed, i)``, so the result does not depend on the
    number of workers.  ``progress(n)`` is called with the number of images finished.
    """
    n = len(params["angle"])
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    starts = list(range(0, n, CHUNK))

    def work(i: int) -> int:
        sl = slice(starts[i], starts[i] + CHUNK)
        chunk = {k: v[sl] for k, v in params.items()}
        rng = np.random.default_rng([seed, i, 0x5F])
        out[sl] = render_chunk(chunk, size, rng)
        return len(chunk["angle"])

    workers = workers or min(4, os.cpu_count() or 1)
    if workers <= 1 or len(starts) == 1:
        for i in range(len(starts)):
            done = work(i)
            if progress:
                progress(done)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for done in pool.map(work, range(len(starts))):
                if progress:
                    progress(done)
    return out
