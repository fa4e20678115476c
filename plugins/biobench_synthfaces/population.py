"""Who is in a synthetic population, and how each of their pictures was taken.

Sampling is separate from rendering: this module draws every random quantity (people, their
attributes and unnamed traits, and per-image pose, expression, accessories and capture
conditions) as plain numpy arrays; :mod:`biobench_synthfaces.render` turns them into pixels.
All geometry is in *face units*: the head is centred at the origin, its half-width is about 1,
``v`` points down (image convention).

The population model, in brief:

- **Identity attributes** (constant for a person), named as in CelebA / PubFig: sex, skin tone
  (``White``, ``Black``, ``Asian`` as separate binary attributes as PubFig has them; a fourth
  group has none of the three), hair colour or baldness, and face, nose, eye, lip, cheek and
  eyebrow shape.  They are drawn with correlations loosely modelled on those datasets (men are
  more often bald and bushy-browed; blond hair is mostly found with light skin).
- **Profiles.**  People are drawn from a pool of attribute *profiles* shared by
  ``people_per_profile`` people each, as in any real population, where many people share the same
  attribute vector.  Without this a handful of binary attributes would single out almost every
  person in a small population, and "identification from ground-truth attributes" would reduce to
  reading the answer off the attribute vector.
- **Unnamed traits** (constant for a person, in no attribute): exact head proportions, feature
  spacing and size within the attribute's range, skin, hair and iris colours, hair length and
  parting, ear size, eyebrow angle, a mole, the glasses they own.  These are what separate two
  people with the same profile.
- **Per-image attributes**: ``Eyeglasses`` (each person has their own propensity), ``Smiling``,
  ``Mouth_Slightly_Open``, ``Wearing_Hat``; they vary within a person and are excluded from fusion.
- **Nuisances**, scaled by ``difficulty`` in [0, 1]: pose (in-plane rotation, translation, scale,
  a yaw-like shift of the inner features), illumination (gain, directional light, colour cast),
  sensor noise, blur, partial occlusion, and cluttered backgrounds and clothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Attributes constant for a person (usable in fusion), in CelebA spelling.
IDENTITY_ATTRIBUTES: tuple[str, ...] = (
    "Male",
    "White",
    "Black",
    "Asian",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Bald",
    "Oval_Face",
    "Big_Nose",
    "Narrow_Eyes",
    "Big_Lips",
    "Chubby",
    "Bushy_Eyebrows",
)
#: Attributes that change from picture to picture of the same person (excluded from fusion).
IMAGE_ATTRIBUTES: tuple[str, ...] = ("Eyeglasses", "Smiling", "Mouth_Slightly_Open", "Wearing_Hat")
ATTRIBUTES: tuple[str, ...] = IDENTITY_ATTRIBUTES + IMAGE_ATTRIBUTES

# Skin-tone groups: the first three are PubFig's binary attributes; the fourth (e.g. South Asian,
# Latino) sets none of them, so the three are not one-hot and a classifier cannot shortcut.
WHITE, BLACK, ASIAN, OTHER = range(4)
SKIN_RGB = np.array(
    [
        [0.93, 0.78, 0.68],  # White
        [0.45, 0.30, 0.21],  # Black
        [0.91, 0.79, 0.62],  # Asian
        [0.74, 0.55, 0.41],  # other
    ],
    dtype=np.float32,
)
# Hair colour groups; the fifth (red) has no attribute.  Bald people keep a latent hair colour,
# used for their eyebrows.
HAIR_BLACK, HAIR_BLOND, HAIR_BROWN, HAIR_GRAY, HAIR_RED = range(5)
HAIR_RGB = np.array(
    [
        [0.10, 0.08, 0.07],
        [0.86, 0.74, 0.45],
        [0.40, 0.25, 0.14],
        [0.70, 0.69, 0.68],
        [0.60, 0.24, 0.11],
    ],
    dtype=np.float32,
)
IRIS_RGB = np.array(
    [[0.30, 0.18, 0.09], [0.12, 0.08, 0.05], [0.30, 0.45, 0.65], [0.35, 0.48, 0.30]],
    dtype=np.float32,
)

DIFFICULTY_LEVELS = {"easy": 0.25, "medium": 0.5, "hard": 0.8}


def difficulty_value(difficulty: float | str) -> float:
    """Map ``"easy" | "medium" | "hard"`` or a number in [0, 1] to the nuisance scale."""
    if isinstance(difficulty, str):
        if difficulty not in DIFFICULTY_LEVELS:
            raise ValueError(
                f"difficulty {difficulty!r}: use a number in [0, 1] or one of "
                f"{', '.join(DIFFICULTY_LEVELS)}"
            )
        return DIFFICULTY_LEVELS[difficulty]
    if isinstance(difficulty, bool) or not isinstance(difficulty, int | float):
        raise ValueError(f"difficulty must be a number or a level name, got {difficulty!r}")
    value = float(difficulty)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"difficulty {value} is outside [0, 1]")
    return value


@dataclass
class Population:
    """Everything random about a synthetic dataset, as arrays (``P`` people, ``N`` images).

    ``identity_attributes`` is ``[P, len(IDENTITY_ATTRIBUTES)]`` and ``image_attributes``
    ``[N, len(IMAGE_ATTRIBUTES)]`` (0/1 float32).  ``person`` maps each image to its person.
    ``traits`` holds per-person arrays and ``shots`` per-image arrays, both keyed by name and
    consumed by the renderer.
    """

    identity_attributes: np.ndarray
    image_attributes: np.ndarray
    person: np.ndarray
    profile: np.ndarray
    traits: dict[str, np.ndarray]
    shots: dict[str, np.ndarray]
    difficulty: float

    @property
    def attributes(self) -> np.ndarray:
        """``[N, len(ATTRIBUTES)]`` attribute matrix, identity attributes first."""
        return np.concatenate(
            [self.identity_attributes[self.person], self.image_attributes], axis=1
        ).astype(np.float32)

    def per_image(self) -> dict[str, np.ndarray]:
        """Person traits broadcast to images, merged with the per-image parameters."""
        out = {k: v[self.person] for k, v in self.traits.items()}
        out.update(self.shots)
        return out


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` ([n, k], rows summing to 1)."""
    cumulative = np.cumsum(probs, axis=1)
    cumulative[:, -1] = 1.0  # guard against rounding leaving the last bin unreachable
    return (rng.random(len(probs))[:, None] > cumulative).sum(axis=1)


def sample_profiles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` identity-attribute profiles, ``[n, len(IDENTITY_ATTRIBUTES)]`` of 0/1.

    Prevalences are loose, rounded readings of CelebA/PubFig; the correlations are those that
    make the attributes plausible together (not tuned for any experiment).
    """
    male = rng.random(n) < 0.5
    group = _categorical(rng, np.tile([0.55, 0.15, 0.15, 0.15], (n, 1)))
    light = group == WHITE
    bald = rng.random(n) < np.where(male, 0.15, 0.01)
    # Hair colour depends on skin-tone group and sex: blond is mostly found with light skin.
    hair_p = np.where(
        light[:, None],
        np.where(male[:, None], [0.24, 0.16, 0.38, 0.14, 0.08], [0.16, 0.36, 0.32, 0.09, 0.07]),
        [0.74, 0.03, 0.15, 0.08, 0.00],
    )
    hair = _categorical(rng, hair_p)
    chubby = rng.random(n) < 0.15
    oval = rng.random(n) < np.where(chubby, 0.05, np.where(male, 0.25, 0.42))
    big_nose = rng.random(n) < np.where(male, 0.35, 0.15)
    narrow = rng.random(n) < np.where(group == ASIAN, 0.5, 0.12)
    big_lips = rng.random(n) < np.where(group == BLACK, 0.5, np.where(male, 0.12, 0.3))
    bushy = rng.random(n) < np.where(male, 0.32, 0.1)
    has_hair = ~bald
    columns = {
        "Male": male,
        "White": group == WHITE,
        "Black": group == BLACK,
        "Asian": group == ASIAN,
        "Black_Hair": has_hair & (hair == HAIR_BLACK),
        "Blond_Hair": has_hair & (hair == HAIR_BLOND),
        "Brown_Hair": has_hair & (hair == HAIR_BROWN),
        "Gray_Hair": has_hair & (hair == HAIR_GRAY),
        "Bald": bald,
        "Oval_Face": oval,
        "Big_Nose": big_nose,
        "Narrow_Eyes": narrow,
        "Big_Lips": big_lips,
        "Chubby": chubby,
        "Bushy_Eyebrows": bushy,
    }
    profiles = np.stack([columns[a] for a in IDENTITY_ATTRIBUTES], axis=1).astype(np.float32)
    # The latent hair colour and skin group are not recoverable from the attributes alone (red
    # hair, the fourth skin group, bald people's brows), so they travel with the profile.
    return np.concatenate([profiles, group[:, None], hair[:, None]], axis=1)


def _pick(flag: np.ndarray, yes: tuple[float, float], no: tuple[float, float], u: np.ndarray):
    """Uniform draws in ``yes`` where ``flag`` else in ``no`` (``u`` uniform in [0, 1))."""
    lo = np.where(flag, yes[0], no[0])
    hi = np.where(flag, yes[1], no[1])
    return (lo + (hi - lo) * u).astype(np.float32)


def sample_traits(rng: np.random.Generator, profiles: np.ndarray) -> dict[str, np.ndarray]:
    """Per-person rendering parameters: attribute-driven shape plus unnamed individual traits.

    Attribute-driven quantities are drawn from disjoint ranges for the two values of the
    attribute (so the attribute is visible), and uniformly within the range (so two people with
    the same attribute still differ).
    """
    p = len(profiles)
    col = {a: profiles[:, i] > 0.5 for i, a in enumerate(IDENTITY_ATTRIBUTES)}
    group = profiles[:, len(IDENTITY_ATTRIBUTES)].astype(int)
    hair = profiles[:, len(IDENTITY_ATTRIBUTES) + 1].astype(int)
    male, chubby, oval = col["Male"], col["Chubby"], col["Oval_Face"]

    def u(*shape: int) -> np.ndarray:
        return rng.random((p, *shape)).astype(np.float32)

    t: dict[str, np.ndarray] = {}
    # Head: half-width, height/width ratio and jaw taper (how much the lower face narrows).
    t["head_a"] = (0.93 + 0.1 * u() + 0.04 * male + 0.1 * chubby).astype(np.float32)
    ratio = np.where(chubby, 1.05 + 0.1 * u(), np.where(oval, 1.36 + 0.12 * u(), 1.16 + 0.12 * u()))
    t["head_b"] = (t["head_a"] * ratio).astype(np.float32)
    taper = np.where(chubby, 0.02 + 0.08 * u(), np.where(oval, 0.26 + 0.1 * u(), 0.1 + 0.12 * u()))
    t["jaw_taper"] = (taper - 0.06 * male).clip(0.0, 0.5).astype(np.float32)
    # Skin: the group's tone, shifted in brightness and hue per person.
    tone = SKIN_RGB[group] * (1 + 0.07 * rng.standard_normal((p, 1)))
    tone += 0.025 * rng.standard_normal((p, 3))
    t["skin"] = tone.clip(0.05, 1.0).astype(np.float32)
    # Hair: colour from the group, with personal variation; length, volume, hairline, parting.
    shade = HAIR_RGB[hair] * (1 + 0.12 * rng.standard_normal((p, 1)))
    t["hair"] = (shade + 0.03 * rng.standard_normal((p, 3))).clip(0.02, 1.0).astype(np.float32)
    t["has_hair"] = (~col["Bald"]).astype(np.float32)
    long_hair = rng.random(p) < np.where(male, 0.1, 0.75)
    t["hair_bottom"] = _pick(long_hair, (1.3, 2.2), (0.1, 0.55), u())
    t["hair_volume"] = (0.08 + 0.14 * u()).astype(np.float32)
    t["hairline"] = (-0.55 - 0.25 * u() + 0.1 * male).astype(np.float32)
    t["hair_part"] = (0.3 * (2 * u() - 1)).astype(np.float32)
    # Eyes: position, spacing and size; Narrow_Eyes sets the opening (height/width).
    t["eye_y"] = (-0.12 + 0.14 * u()).astype(np.float32)
    t["eye_dx"] = (0.34 + 0.1 * u()).astype(np.float32)
    t["eye_w"] = (0.15 + 0.04 * u()).astype(np.float32)
    t["eye_open"] = _pick(col["Narrow_Eyes"], (0.26, 0.36), (0.46, 0.62), u())
    iris_p = np.where((group == WHITE)[:, None], [0.35, 0.15, 0.3, 0.2], [0.55, 0.45, 0.0, 0.0])
    t["iris"] = IRIS_RGB[_categorical(rng, iris_p)]
    # Eyebrows: Bushy_Eyebrows sets thickness and length; angle and gap are personal.
    bushy = col["Bushy_Eyebrows"]
    t["brow_thick"] = _pick(bushy, (0.065, 0.085), (0.03, 0.045), u())
    t["brow_len"] = _pick(bushy, (0.2, 0.25), (0.15, 0.19), u())
    t["brow_gap"] = (0.17 + 0.07 * u()).astype(np.float32)
    t["brow_angle"] = (0.3 * (2 * u() - 1)).astype(np.float32)
    t["brow"] = (t["hair"] * 0.55 + 0.04).astype(np.float32)
    # Nose: Big_Nose sets length and width.
    t["nose_len"] = _pick(col["Big_Nose"], (0.46, 0.56), (0.3, 0.38), u())
    t["nose_w"] = _pick(col["Big_Nose"], (0.17, 0.22), (0.1, 0.135), u())
    # Mouth: distance below the nose and width are personal; Big_Lips sets lip thickness; lip
    # colour depends on sex (make-up is common in CelebA's and PubFig's photos of women).
    t["mouth_gap"] = (0.15 + 0.1 * u()).astype(np.float32)
    t["mouth_w"] = (0.24 + 0.08 * u()).astype(np.float32)
    t["lip_thick"] = _pick(col["Big_Lips"], (0.1, 0.13), (0.045, 0.065), u())
    red = np.array([0.75, 0.2, 0.25], dtype=np.float32)
    lip_mix = np.where(male, 0.15, 0.45)[:, None] + 0.1 * u(1)
    t["lips"] = (t["skin"] * 0.72 * (1 - lip_mix) + red * lip_mix).astype(np.float32)
    # Cheeks: Chubby adds round, flushed cheeks.
    t["cheek"] = np.where(chubby, 0.35 + 0.1 * u(), 0.0).astype(np.float32)
    t["ear"] = (0.16 + 0.06 * u()).astype(np.float32)
    # A mole: a small, strongly identifying mark that some people have.
    t["mole"] = (rng.random(p) < 0.35).astype(np.float32)
    t["mole_u"] = (0.75 * (2 * u() - 1)).astype(np.float32)
    t["mole_v"] = (0.15 + 0.5 * u()).astype(np.float32)
    # Glasses: how often this person wears them, and the frames they own.
    t["glasses_p"] = np.where(rng.random(p) < 0.3, 0.6, 0.05).astype(np.float32)
    t["frame"] = (0.05 + 0.5 * u(3) * (rng.random((p, 1)) < 0.3)).astype(np.float32)
    t["frame_round"] = (0.65 + 0.3 * u()).astype(np.float32)
    return t


def sample_shots(
    rng: np.random.Generator, traits: dict[str, np.ndarray], person: np.ndarray, difficulty: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-image attributes and capture parameters for images of ``person`` (indices)."""
    n = len(person)
    d = difficulty

    def u(*shape: int) -> np.ndarray:
        return rng.random((n, *shape)).astype(np.float32)

    def sym() -> np.ndarray:
        return 2 * u() - 1

    glasses = rng.random(n) < traits["glasses_p"][person]
    smiling = rng.random(n) < 0.45
    mouth_open = rng.random(n) < np.where(smiling, 0.55, 0.3)
    hat = rng.random(n) < 0.12
    attrs = np.stack([glasses, smiling, mouth_open, hat], axis=1).astype(np.float32)

    s: dict[str, np.ndarray] = {}
    # Pose.  Faces are roughly aligned (as in CelebA's aligned crops); difficulty loosens it.
    s["angle"] = (np.deg2rad(4 + 16 * d) * np.clip(rng.standard_normal(n), -2.5, 2.5)).astype(
        np.float32
    )
    s["tx"] = ((0.03 + 0.1 * d) * sym()).astype(np.float32)
    s["ty"] = ((0.03 + 0.1 * d) * sym()).astype(np.float32)
    s["scale"] = (1 + (0.04 + 0.14 * d) * sym()).astype(np.float32)
    s["yaw"] = ((0.05 + 0.6 * d) * sym()).astype(np.float32)
    # Expression and gaze.
    s["smile"] = np.where(smiling, 0.5 + 0.5 * u(), 0.15 * sym()).astype(np.float32)
    s["open"] = np.where(mouth_open, 0.035 + 0.04 * u(), 0.0).astype(np.float32)
    s["gaze_x"] = (0.3 * sym()).astype(np.float32)
    s["gaze_y"] = (0.2 * sym()).astype(np.float32)
    s["brow_raise"] = (0.03 * sym()).astype(np.float32)
    # Accessories.
    s["glasses"] = glasses.astype(np.float32)
    s["hat"] = hat.astype(np.float32)
    s["hat_rgb"] = u(3)
    s["hat_h"] = (0.5 + 0.35 * u()).astype(np.float32)
    # Scene: background colour, gradient and a clutter blob; clothing.
    s["bg"] = (0.1 + 0.8 * u(3)).astype(np.float32)
    s["bg_grad"] = (0.25 * rng.standard_normal((n, 2))).astype(np.float32)
    s["blob"] = u(3)
    s["blob_xy"] = (1.6 * u(2) - 0.8).astype(np.float32)
    s["blob_r"] = (0.2 + 0.5 * u(2)).astype(np.float32)
    s["cloth"] = u(3)
    # Illumination: global gain, a directional light and a colour cast.
    s["gain"] = (1 + d * (0.25 * u() - 0.4 * u())).astype(np.float32)
    s["light_dir"] = (2 * np.pi * u()).astype(np.float32)
    s["light"] = ((0.05 + 0.5 * d) * u()).astype(np.float32)
    s["cast"] = (1 + (0.02 + 0.1 * d) * rng.standard_normal((n, 3))).astype(np.float32)
    # Sensor: noise and blur (blur sigma as a fraction of the image width: resolution-free).
    s["noise"] = ((0.005 + 0.06 * d) * u()).astype(np.float32)
    s["blur"] = np.where(rng.random(n) < 0.5, (0.004 + 0.022 * d) * u(), 0.0).astype(np.float32)
    # Occlusion: an object (hand, scarf, microphone) in front of part of the face.
    s["occluded"] = (rng.random(n) < 0.4 * d).astype(np.float32)
    s["occ_xy"] = (1.0 * u(2) - 0.5).astype(np.float32)
    s["occ_wh"] = (0.15 + 0.3 * u(2)).astype(np.float32)
    s["occ_rgb"] = u(3)
    return attrs, s


def sample_population(
    seed: int, identities: int, images_per_identity: int, difficulty: float, people_per_profile: int
) -> Population:
    """Draw a whole population: people, their attributes and traits, and every image's shot.

    Independent random streams are used for profiles, people and images, so that asking for
    more images per person keeps the people unchanged.
    """
    profile_rng, trait_rng, shot_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    n_profiles = -(-identities // people_per_profile)
    profiles = sample_profiles(profile_rng, n_profiles)
    # Each profile is shared by people_per_profile people (the last one possibly by fewer), in a
    # shuffled order so that look-alikes are not neighbours in the identity numbering.
    profile_of = trait_rng.permutation(np.arange(identities) % n_profiles)
    person_profiles = profiles[profile_of]
    traits = sample_traits(trait_rng, person_profiles)
    person = np.repeat(np.arange(identities), images_per_identity)
    image_attributes, shots = sample_shots(shot_rng, traits, person, difficulty)
    return Population(
        identity_attributes=person_profiles[:, : len(IDENTITY_ATTRIBUTES)].astype(np.float32),
        image_attributes=image_attributes,
        person=person,
        profile=profile_of,
        traits=traits,
        shots=shots,
        difficulty=difficulty,
    )
