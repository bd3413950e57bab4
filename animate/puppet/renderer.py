"""The CPU puppet renderer: segment, triangulate, rig, deform, layer and composite the reference character.

``prepare`` (once per character):
    1. character alpha: the user's mask, else the mediapipe segmentation (optionally refined with GrabCut,
       :mod:`reference.segmentation`);
    2. rig from the reference pose (:class:`reference.rig.Rig`), every character pixel labelled with a
       draw layer (``right_leg``, ``left_leg``, ``body`` = torso, head and hips, ``right_arm``, ``left_arm``);
    3. one triangle mesh per layer over the layer's (slightly grown) region (:mod:`reference.mesh`), bound
       to the bones by smooth skinning weights, or by ARAP handles at the joints (:mod:`.arap`);
    4. background plate = reference with the character inpainted at two scales (:mod:`.inpaint`);
    5. per layer, a premultiplied RGBA texture (reference colours, alpha = character alpha x layer, its
       silhouette feathered by ``edge_feather``), continued past the image borders that cut the character
       (:mod:`.offcanvas`); the body layer also continues, in its own colours, under the limbs that notch
       it or lie over it in the reference.

``render`` (per frame): complete the joints (missing -> last known / reference), bone transforms, deform
each layer's mesh, decide the draw order (:mod:`.layering`), and for each layer build a dense backward map
(deformed pixel -> reference pixel) with a vectorised rasteriser and per-triangle affine maps, then
``cv2.remap`` the texture and composite it over the plate. The silhouette comes from the remapped soft
alpha, so edges stay antialiased. numpy / scipy / OpenCV (+ mediapipe for segmentation) only.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import cv2
import numpy as np
from scipy import ndimage
from tqdm import tqdm

from animate.renderer import Renderer
from pose import layout
from pose.errors import ConfigError, InputError
from pose.sequence import PoseFrame, PoseSequence
from reference.mesh import Mesh, rasterize_triangles, triangle_affines, triangulate_mask
from reference.morphology import disc
from reference.rig import LEG_LAYERS, SKULL_FADE, Rig, absorb_islands
from reference.segmentation import (
    SegmentationConfig,
    coarse_mask,
    prepare_mask,
    segment_person,
)

from .arap import ARAPDeformer
from .backdrop import TRANSPARENT, backdrop_image, parse_backdrop
from .inpaint import METHODS as INPAINT_METHODS
from .inpaint import colour_fringe, inpaint_background, uncertain_fringe
from .layering import draw_order
from .offcanvas import (
    SOFTEN,
    border_padding,
    extend_past_border,
    hold_mask_at_border,
    inset_lines,
    repair_edge_lines,
)
from .translucent import attach_translucent, nearest_labels, translucent_fringe

logger = logging.getLogger(__name__)

#: How far (in limb radii) a leg layer continues under the body's share of its thigh (``leg_underlay``).
LEG_UNDERLAY_RADII = 1.5

#: The leg layers, back to front, in the rig's fixed draw order: where they touch in the reference, the one
#: behind goes on a little under the other, so that the seam between them does not show what lies behind.
BACK_LEG, FRONT_LEG = LEG_LAYERS
#: A limb layer continues past the image border (:mod:`.offcanvas`) only this many limb radii from its bones.
LIMB_REACH_RADII = 1.5
#: The body's colours continued under a limb leave out its pixels this close to the limb (fraction of the
#: height): antialiasing blends them with the limb's colour (``extend_colours(margin=)``).
UNDERLAY_SOURCE_MARGIN = 0.01
#: Width (fraction of the height) of the band of the body's own pixels along an arm lying over it that is
#: filled with the body's colours too (:func:`edge_ring`).
UNDERLAY_EDGE_RING = 0.003
#: Longest run of arm pixels over the body (in limb radii) that the body layer continues under
#: (:func:`covered_by_limbs`; with ``body_underlay``).
COVERED_LIMB_RADII = 5.0
#: An arm's hidden part (``limb_underlay``) also takes the arm's own pixels within this many ``edge_feather``
#: sigmas of it, so that the two layers' feathered edges do not meet inside the arm.
SEAM_BACKING_SIGMAS = 3.0
#: Softening of the colours continued under a limb (``extend_colours(soften=)``), fraction of the height.
FILL_SOFTEN = 0.004
#: The body's colours continued into a notch of its side (``body_underlay``) come from the nearest clothes
#: with horizontal distances counted this many times (``extend_colours(stretch=)``): the fill follows the
#: garment down the side (docs/PUPPET.md); the limbs lying inside the body use plain distances.
SIDE_FILL_STRETCH = 1.3
#: ... and where a line of at most this many limb radii through the body crosses the notch between two of
#: its pixels, the fill interpolates between them (``extend_colours(bridge=)``; down the side, mostly).
SIDE_FILL_BRIDGE_RADII = 2.0

DEFORMATIONS = ("skinning", "arap")
# Map value that ``cv2.remap`` reads as "outside" (border constant = transparent).
_OUTSIDE = -1.0e4
_SEAM_KERNEL = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class PuppetOptions:
    """Options of :class:`PuppetRenderer` (all keyword arguments of its constructor).

    Attributes:
        deformation: ``"skinning"`` (linear blend skinning, default: scored better, see docs/PUPPET.md)
            or ``"arap"`` (as-rigid-as-possible with the joints as handles).
        mesh_density: mesh rows across the canvas height; vertex spacing = height / density (default 64).
        layering: order layers per frame from the pose (``False``: body, then arms on top).
        inpaint: background fill, ``"telea"`` (default) or ``"ns"``.
        inpaint_dilate: the hole grows past the character by this fraction of the height (default 0.006).
        head_hole: around the head (:meth:`Rig.head_zone`) the hole grows this much further (fraction of
            the height, default 0.014; 0 = off): light hair and halos fade into the background over more
            pixels than the rest of the outline, and left in the plate they drew a thin outline of the head
            where it stood.
        inpaint_radius: inpainting neighbourhood radius in working pixels (default 10).
        inpaint_side: longest side of the inpainting working resolution (default 192).
        inpaint_coarse_side: resolution of the coarse fill used deep inside the hole (default 64; 0 = off).
        segmentation: ``"holistic"`` (default) or ``"selfie"`` mediapipe mask when no mask is given.
        refine_mask: refine the segmentation with GrabCut (default False: on the self-reenactment benchmark
            the plain mediapipe mask scored better, see docs/PUPPET.md).
        mask_threshold: segmentation probability above which a pixel is character (default 0.85: a tight
            mask, whose edge ``edge_feather`` then softens).
        mask_snap: radius (fraction of the height) of the colour guided filter that snaps the segmentation
            probability to the reference's own edges before the threshold (default 0.012; 0 = off): the
            mediapipe mask, computed at 256 px, otherwise overshoots thin limbs by a few pixels.
        refine_feet: a small GrabCut around each foot adds the shoe that the segmentation often stops short
            of (:func:`reference.segmentation.refine_feet`; default True).
        hole_threshold: pixels next to the cut-out (within :data:`~animate.puppet.inpaint.FRINGE_REACH`
            of the height) whose segmentation probability is above this are inpainted in the background
            plate although they are not cut out (default 0.5; 1 = off): the tight mask leaves out the
            uncertain fringe of limbs coloured like the background, which otherwise stays behind as a ghost
            outline when the limb moves. Not used with a given mask.
        hole_colour_ratio: the plate also loses the pixels next to the cut-out whose colour is this many
            times likelier under the character's outline colours than under the background's around it
            (:func:`~animate.puppet.inpaint.colour_fringe`; default 4, 0 = off): hair tips and glows the
            segmentation missed would float in the plate. Not used with a given mask.
        translucent: translucent and glowing parts beside the character that the segmentation leaves out
            (sheer sleeves, a glowing rim, a halo) move with it (:mod:`.translucent`; default True): pixels
            within 8 % of the height of the cut-out whose colours the background around them lacks are
            inpainted in the plate and attached to the nearest layer with an alpha unmixed from the plate.
            Never beside the legs (shadows, the floor between the feet). Not used with a given mask.
        skinning_power: skinning weight falloff exponent (default 5).
        layer_margin: layer meshes grow past their region by this fraction of the height (default 0.008).
        score_threshold: driving keypoints below this score count as missing (default 0.3).
        arap_handle_weight: ARAP handle constraint weight (default 1000).
        leg_layers: each leg is its own layer, drawn behind the body (default True), so legs that touch in
            the reference part cleanly.
        head_from_face: the head follows the similarity of the face landmarks when they are found, else
            the nose, eyes, ears and neck (default False: the face landmarks scored worse, docs/PUPPET.md).
        head_from_ears: the body head (used unless ``head_from_face``) follows the neck and both ears
            when they are detected, the skull's axis, instead of also the eyes and nose, which slide
            sideways as the head turns while the hair outline does not (default True). Skinning only.
        hands_from_keypoints: each hand turns about its wrist to the direction of the detected hand (wrist ->
            knuckles) when found, and eases back to its forearm's line when lost (default True; otherwise the
            hands rigidly continue the forearms).
        edge_feather: Gaussian sigma of the layer silhouettes as a fraction of the height (default 0.004).
        loose_feather: extra silhouette softening far from the bones (loose clothes, hair), fraction of the
            height (default 0 = off).
        thigh_body_fraction: the upper part of each thigh (this fraction of its length) stays in the body
            layer and blends both thighs (default 0.7; skirts, shorts).
        torso_affine: blend of the torso's affine (1) and similarity (0) fit (default 0.5).
        skirt_stretch: the body layer's share of the thighs (skirts, shorts) stretches and squashes with
            the thighs' on-screen length by only this fraction, turning with them fully (default 0.5;
            :meth:`Rig.body_transforms`): cloth hangs from the waist in a squat. Skinning only (ARAP moves
            the layers by their joint handles).
        torso_stiffness: the torso keeps the reference's neck to mid-hip length (1, default), follows the
            driving hips (0), or a blend (:meth:`Rig.steady_torso`): detected hips under a skirt wander
            while the waist does not.
        body_underlay: the body layer continues under limbs that notch its outline in the reference (a hand
            on the hip, an arm along the side) up to this many limb radii wide, coloured from the body's
            own pixels around them, so a limb moving away reveals clothes instead of the background plate
            (default 1.0; 0 = off).
        limb_underlay: where the body covers an arm in the reference (a ruffle or a lock of hair over the
            upper arm, :meth:`Rig.hidden_limb`), the arm is completed in its own colours in an extra layer
            drawn right behind the body: hidden while the arm stays, it fills the arm's notch once the arm
            moves away (default True; skinning only).
        leg_underlay: each leg layer continues under the body's share of its thigh (``thigh_body_fraction``),
            coloured from the leg's own pixels (default True): where the body layer's part of the thigh
            stretches less than the leg (``skirt_stretch``), or a thigh swings out from under a skirt, the
            leg's skin shows instead of a seam of background plate.
        colour_split: arm pixels coloured like the body beside the arm rather than like the arm's core (a
            strip of the top or the shorts next to an arm hanging along the body), and hair that falls over
            an arm from the head (:meth:`Rig.hair_over_arms`), go to the body layer (default True).
        border_extend: where the image border cuts the character (a half-body portrait, feet or hands out of
            frame), the layers continue past it by this fraction of the height, repeating the colours at
            the border (:mod:`.offcanvas`; default 0.25, 0 = off): a lean or a jump then never lifts the
            straight cut into view.
        background: what the character is drawn over (:mod:`.backdrop`): ``"plate"`` (default: the reference's
            own background with the character inpainted away), a colour (``"green"``, ``"blue"``, ``"white"``,
            ... or ``"#rrggbb"``, ``[r, g, b]``; a green screen for compositing), the path of a picture,
            scaled to cover the canvas, or ``"transparent"``: RGBA frames (straight alpha) for a ``.webm``
            or ``.mov`` with an alpha channel.
        threads: frames rasterised at the same time (default 2). The per-frame state (last joints, draw
            order) is still updated in frame order; only the drawing, which is numpy/OpenCV work that releases
            the GIL, overlaps. Output is identical to ``threads=1``.
        progress: show a tqdm bar while rendering (default False).
    """

    deformation: str = "skinning"
    mesh_density: float = 64.0
    layering: bool = True
    inpaint: str = "telea"
    inpaint_dilate: float = 0.006
    head_hole: float = 0.014
    inpaint_radius: float = 10.0
    inpaint_side: int = 192
    inpaint_coarse_side: int = 64
    segmentation: str = "holistic"
    refine_mask: bool = False
    mask_threshold: float = 0.85
    mask_snap: float = 0.012
    refine_feet: bool = True
    hole_threshold: float = 0.5
    hole_colour_ratio: float = 4.0
    translucent: bool = True
    skinning_power: float = 5.0
    layer_margin: float = 0.008
    score_threshold: float = 0.3
    arap_handle_weight: float = 1000.0
    leg_layers: bool = True
    head_from_face: bool = False
    head_from_ears: bool = True
    hands_from_keypoints: bool = True
    edge_feather: float = 0.004
    loose_feather: float = 0.0
    thigh_body_fraction: float = 0.7
    torso_affine: float = 0.5
    torso_stiffness: float = 1.0
    skirt_stretch: float = 0.5
    body_underlay: float = 1.0
    limb_underlay: bool = True
    leg_underlay: bool = True
    colour_split: bool = True
    border_extend: float = 0.25
    background: str | list | None = "plate"
    threads: int = 2
    progress: bool = False

    def __post_init__(self) -> None:
        if self.deformation not in DEFORMATIONS:
            raise ConfigError(f"puppet option deformation='{self.deformation}' is invalid; use one of {', '.join(DEFORMATIONS)}")
        if not 8.0 <= float(self.mesh_density) <= 512.0:
            raise ConfigError(f"puppet option mesh_density={self.mesh_density} is out of range; use 8..512")
        if self.inpaint not in INPAINT_METHODS:
            raise ConfigError(f"puppet option inpaint='{self.inpaint}' is invalid; use one of {', '.join(INPAINT_METHODS)}")
        if not 0.0 <= float(self.inpaint_dilate) < 0.1:
            raise ConfigError(f"puppet option inpaint_dilate={self.inpaint_dilate} must be in [0, 0.1)")
        if not 0.0 <= float(self.head_hole) < 0.1:
            raise ConfigError(f"puppet option head_hole={self.head_hole} must be in [0, 0.1)")
        if not float(self.inpaint_radius) > 0 or int(self.inpaint_side) < 16:
            raise ConfigError(f"puppet options inpaint_radius={self.inpaint_radius} must be > 0 and inpaint_side={self.inpaint_side} >= 16")
        if int(self.inpaint_coarse_side) != 0 and int(self.inpaint_coarse_side) < 16:
            raise ConfigError(f"puppet option inpaint_coarse_side={self.inpaint_coarse_side} must be 0 (off) or >= 16")
        if self.segmentation not in ("holistic", "selfie"):
            raise ConfigError(f"puppet option segmentation='{self.segmentation}' is invalid; use holistic or selfie")
        if not 0.0 < float(self.mask_threshold) < 1.0:
            raise ConfigError(f"puppet option mask_threshold={self.mask_threshold} must be in (0, 1)")
        if not 0.0 < float(self.hole_threshold) <= 1.0:
            raise ConfigError(f"puppet option hole_threshold={self.hole_threshold} must be in (0, 1]")
        if not (float(self.hole_colour_ratio) == 0.0 or float(self.hole_colour_ratio) > 1.0):
            raise ConfigError(f"puppet option hole_colour_ratio={self.hole_colour_ratio} must be 0 (off) or > 1")
        if not float(self.skinning_power) > 0:
            raise ConfigError(f"puppet option skinning_power={self.skinning_power} must be > 0")
        if not 0.0 <= float(self.layer_margin) < 0.1:
            raise ConfigError(f"puppet option layer_margin={self.layer_margin} must be in [0, 0.1)")
        if not 0.0 <= float(self.score_threshold) <= 1.0:
            raise ConfigError(f"puppet option score_threshold={self.score_threshold} must be in [0, 1]")
        if not (0.0 <= float(self.edge_feather) < 0.05 and 0.0 <= float(self.loose_feather) < 0.05):
            raise ConfigError(f"puppet options edge_feather={self.edge_feather} and loose_feather={self.loose_feather} "
                              "must be in [0, 0.05)")
        if not 0.0 <= float(self.torso_affine) <= 1.0:
            raise ConfigError(f"puppet option torso_affine={self.torso_affine} must be in [0, 1]")
        if not 0.0 <= float(self.torso_stiffness) <= 1.0:
            raise ConfigError(f"puppet option torso_stiffness={self.torso_stiffness} must be in [0, 1]")
        if not 0.0 <= float(self.skirt_stretch) <= 1.0:
            raise ConfigError(f"puppet option skirt_stretch={self.skirt_stretch} must be in [0, 1]")
        if not 0.0 <= float(self.body_underlay) <= 4.0:
            raise ConfigError(f"puppet option body_underlay={self.body_underlay} must be in [0, 4]")
        parse_backdrop(self.background)  # a ConfigError names a bad colour or a missing picture
        if not 0.0 <= float(self.border_extend) <= 1.0:
            raise ConfigError(f"puppet option border_extend={self.border_extend} must be in [0, 1]")
        if not 0.0 <= float(self.thigh_body_fraction) <= 1.0:
            raise ConfigError(f"puppet option thigh_body_fraction={self.thigh_body_fraction} must be in [0, 1]")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or not 1 <= self.threads <= 16:
            raise ConfigError(f"puppet option threads={self.threads!r} must be an integer in 1..16")
        if not float(self.arap_handle_weight) > 0:
            raise ConfigError(f"puppet option arap_handle_weight={self.arap_handle_weight} must be > 0")


@dataclass
class PuppetLayer:
    """One draw layer of the prepared character.

    Attributes:
        name: layer name (``body``, ``right_arm``, ``left_arm``).
        mesh: rest mesh in canvas coordinates (vertices may lie past the border, :mod:`.offcanvas`).
        ref_tris: ``(M, 3, 2)`` rest triangle corners in texture coordinates (the canvas, shifted where the
            texture continues past the image's top or left border, :mod:`.offcanvas`).
        texture: ``(H', W', 4)`` uint8 premultiplied RGBA of this layer: the reference canvas, continued past
            the borders that cut the character.
        weights: ``(N, B)`` skinning weights (skinning) or ``None``.
        arap: the factorised ARAP deformer (arap) or ``None``.
        handles: ``(H,)`` handle spec for ARAP: index into the frame's target points.
    """

    name: str
    mesh: Mesh
    ref_tris: np.ndarray
    texture: np.ndarray
    weights: np.ndarray | None = None
    arap: ARAPDeformer | None = None
    handles: np.ndarray | None = None


def unpremultiply(rgba: np.ndarray) -> np.ndarray:
    """Straight-alpha ``(H, W, 4)`` uint8 RGBA of a premultiplied one (colour / alpha where alpha > 0).

    Only the partly covered pixels (the silhouette's soft edge) are divided; opaque and empty ones, nearly
    all of a frame, are copied."""
    out = rgba.copy()
    a = rgba[..., 3]
    ys, xs = np.nonzero((a > 0) & (a < 255))
    if len(ys):
        edge = rgba[ys, xs].astype(np.float32)
        out[ys, xs, :3] = np.clip(edge[:, :3] * 255.0 / edge[:, 3:] + 0.5, 0, 255).astype(np.uint8)
    return out


def layer_texture(image: np.ndarray, alpha: np.ndarray, feather: float = 0.0, loose: np.ndarray | None = None,
                  loose_feather: float = 0.0) -> np.ndarray:
    """Premultiplied RGBA texture of one layer, its silhouette optionally feathered.

    Feathering blurs the alpha with a Gaussian of ``feather`` pixels; the colours just outside the
    silhouette are the layer's own colours pushed outward (normalised convolution), never the background
    the reference shows there.

    Args:
        image: ``(H, W, 3)`` uint8 RGB reference.
        alpha: ``(H, W)`` float32 layer alpha in [0, 1].
        feather: Gaussian sigma of the silhouette in pixels (default 0 = as segmented).
        loose: optional ``(H, W)`` float map in [0, 1]: how far a pixel lies from the skeleton (0 on the
            bones, 1 for loose clothing or hair whose outline the pose does not pin down).
        loose_feather: Gaussian sigma in pixels of the silhouette where ``loose`` is 1 (blended linearly).

    Returns:
        ``(H, W, 4)`` uint8 premultiplied RGBA.
    """
    widest = max(feather, loose_feather if loose is not None else 0.0)
    ys, xs = np.nonzero(alpha.any(axis=1))[0], np.nonzero(alpha.any(axis=0))[0]
    if not len(ys):
        return np.zeros(alpha.shape + (4,), np.uint8)
    # Only the layer's bounding box, grown by twice the widest blur's reach (OpenCV's Gaussian kernels reach
    # 4 sigma), is computed: beyond it everything is 0, and the blurs' borders inside it still see only zeros.
    grow = int(np.ceil(2 * 4 * 2.0 * widest)) + 1 if widest > 0 else 0
    h, w = alpha.shape
    y0, y1 = max(ys[0] - grow, 0), min(ys[-1] + grow + 1, h)
    x0, x1 = max(xs[0] - grow, 0), min(xs[-1] + grow + 1, w)
    if (y0, y1, x0, x1) != (0, h, 0, w):
        texture = np.zeros(alpha.shape + (4,), np.uint8)
        texture[y0:y1, x0:x1] = layer_texture(image[y0:y1, x0:x1], alpha[y0:y1, x0:x1], feather,
                                              None if loose is None else loose[y0:y1, x0:x1], loose_feather)
        return texture
    img = image.astype(np.float32)
    if widest > 0:
        spread = 2.0 * widest
        num = cv2.GaussianBlur(img * alpha[..., None], (0, 0), spread)
        den = cv2.GaussianBlur(alpha, (0, 0), spread)
        pushed = num / np.maximum(den, 1e-4)[..., None]
        img = img * alpha[..., None] + pushed * (1.0 - alpha[..., None])
        tight = cv2.GaussianBlur(alpha, (0, 0), feather) if feather > 0 else alpha
        if loose is not None and loose_feather > 0:
            wide = cv2.GaussianBlur(alpha, (0, 0), loose_feather)
            alpha = tight + loose.astype(np.float32) * (wide - tight)
        else:
            alpha = tight
    texture = np.empty(alpha.shape + (4,), np.uint8)
    texture[..., :3] = np.clip(img * alpha[..., None] + 0.5, 0, 255).astype(np.uint8)
    texture[..., 3] = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return texture


def body_underlay(labels: np.ndarray, body: int, region: np.ndarray, width: float) -> np.ndarray:
    """Pixels of other layers that fill a notch of the body layer at most about ``width`` px wide.

    A morphological closing of the body's own pixels (disc of radius ``width``) within the character: where
    a hand rests on the hip or an arm hangs along the side, the body's outline is bitten into by the limb;
    the closing bridges the bite, a limb held away from the body leaves none.

    Args:
        labels: ``(H, W)`` int layer labels (-1 outside the character).
        body: label of the body layer.
        region: ``(H, W)`` bool character region.
        width: closing radius in pixels.

    Returns:
        ``(H, W)`` bool, disjoint from the layer's own pixels.
    """
    own = (labels == body).astype(np.uint8)
    closed = cv2.morphologyEx(own, cv2.MORPH_CLOSE, disc(width), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (closed > 0) & region & (own == 0)


def _bounded_runs(labels: np.ndarray, inside: np.ndarray, owners: list[int], max_run: float) -> np.ndarray:
    """Owner of each ``inside`` pixel in a horizontal run (along axis 1) of at most ``max_run`` pixels whose
    first pixels outside the run, on both ends, belong to ``owners``: the layer of both ends when they
    agree, else ``owners[0]``; -1 elsewhere."""
    h, w = inside.shape
    cols = np.broadcast_to(np.arange(w), (h, w))
    # index of the nearest pixel outside `inside` to the left (-1: none) and to the right (w: none)
    left = np.maximum.accumulate(np.where(inside, -1, cols), axis=1)
    right = np.minimum.accumulate(np.where(inside, w, cols)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(h)[:, None]
    at_left = np.where(left >= 0, labels[rows, np.clip(left, 0, w - 1)], -1)
    at_right = np.where(right < w, labels[rows, np.clip(right, 0, w - 1)], -1)
    ok = inside & np.isin(at_left, owners) & np.isin(at_right, owners) & (right - left - 1 <= max_run)
    return np.where(ok, np.where(at_left == at_right, at_left, owners[0]), -1)


def covered_by_limbs(labels: np.ndarray, owners: list[int], limbs: list[int], max_run: float,
                     min_width: float = 0.0) -> np.ndarray:
    """Limb pixels lying over the body in the reference, and the layer that continues under each.

    A run of limb pixels, across or down the image, at most ``max_run`` pixels long, with pixels of the
    ``owners`` layers (body, legs) at both ends lies over them: hands clasped over a skirt, a forearm across
    the waist, a hand on a thigh. The closing of :func:`body_underlay` only bridges notches in the body's
    outline; an arm hanging beside the body has the background at one end of every run and is left alone.
    The run goes to the layer at its ends, or to ``owners[0]`` (the body) when they differ. Pieces
    narrower than ``min_width`` (the inner edge of an arm hanging close to the body, where single columns
    find the body above and below) are dropped.

    Args:
        labels: ``(H, W)`` int layer labels (-1 outside the character).
        owners: labels of the layers that may continue under a limb, the body first.
        limbs: labels of the layers drawn in front of them (the arms).
        max_run: longest run in pixels.
        min_width: width in pixels of the thinnest piece kept (a morphological opening; 0 = all).

    Returns:
        ``(H, W)`` int: the owner continuing under each covered pixel, -1 elsewhere.
    """
    inside = np.isin(labels, limbs)
    if not inside.any() or not np.isin(labels, owners).any():
        return np.full(labels.shape, -1)
    across = _bounded_runs(labels, inside, owners, max_run)
    down = _bounded_runs(labels.T, inside.T, owners, max_run).T
    covered = np.where(across >= 0, across, down)
    if min_width >= 2:
        kept = cv2.morphologyEx((covered >= 0).astype(np.uint8), cv2.MORPH_OPEN, disc(min_width / 2.0))
        covered[kept == 0] = -1
    return covered


def edge_ring(own: np.ndarray, over: np.ndarray, width: float) -> np.ndarray:
    """A layer's ``own`` pixels (bool ``(H, W)``) within ``width`` px (at least 1) of the ``over`` pixels
    lying over it: the layer's outline there mixes its colours with the covering limb's."""
    if not over.any():
        return np.zeros_like(own, dtype=bool)
    return own & (cv2.dilate(over.astype(np.uint8), disc(max(1.0, width))) > 0)


#: Directions (dy, dx) of the lines a bridged fill looks along (:func:`extend_colours` ``bridge``): across,
#: down, the diagonals and the four in between.
BRIDGE_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1), (1, 2), (2, 1), (1, -2), (2, -1))
#: A bridged fill interpolates only between two ends whose colours differ by at most this much (Euclidean,
#: RGB levels): between two garments (denim and skin) it would draw a colour found on neither.
BRIDGE_MAX_DIFFERENCE = 80.0


def _bridge(image: np.ndarray, source: np.ndarray, todo: np.ndarray, passable: np.ndarray,
            reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colours of the ``todo`` pixels interpolated between two ``source`` pixels on opposite sides of each.

    Along every direction of :data:`BRIDGE_DIRECTIONS` the first source pixel is looked for on both sides,
    within ``reach`` px and through ``passable`` pixels only (a line that leaves the layer finds nothing).
    Of the lines with a source pixel at both ends whose colours differ by at most
    :data:`BRIDGE_MAX_DIFFERENCE`, the one whose ends differ least in colour, plus its length in px, wins:
    across a hem, the line running along it (both ends on the same garment) beats the shorter one crossing
    it, and no line mixes the two garments. Returns the pixels' ``(ys, xs)`` and their ``(N, 3)`` float
    colours, NaN where no line was found."""
    ys, xs = np.nonzero(todo)
    h, w = todo.shape
    colours = image.astype(np.float32)
    best = np.full(len(ys), np.inf, np.float32)
    found = np.full((len(ys), 3), np.nan, np.float32)
    for dy, dx in BRIDGE_DIRECTIONS:
        length = float(np.hypot(dy, dx))
        ends = []
        for sign in (1, -1):
            steps = np.zeros(len(ys), np.int32)  # steps to the first source pixel, 0 = none yet
            going = np.ones(len(ys), bool)
            for k in range(1, int(reach / length) + 1):
                y, x = ys + sign * k * dy, xs + sign * k * dx
                going &= (y >= 0) & (y < h) & (x >= 0) & (x < w)
                y, x = np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)
                hit = going & source[y, x]
                steps[hit] = k
                going &= ~hit & passable[y, x]
                if not going.any():
                    break
            ends.append((steps, colours[np.clip(ys + sign * steps * dy, 0, h - 1),
                                        np.clip(xs + sign * steps * dx, 0, w - 1)]))
        (k1, c1), (k2, c2) = ends
        differ = np.linalg.norm(c1 - c2, axis=1)
        both = (k1 > 0) & (k2 > 0) & (differ <= BRIDGE_MAX_DIFFERENCE)
        cost = differ + (k1 + k2) * length
        better = both & (cost < best)
        share = (k2 / np.maximum(k1 + k2, 1)).astype(np.float32)[:, None]  # the nearer end weighs more
        best[better] = cost[better]
        found[better] = (c1 * share + c2 * (1.0 - share))[better]
    return ys, xs, found


def extend_colours(image: np.ndarray, source: np.ndarray, target: np.ndarray, margin: int = 0,
                   stretch: float = 1.0, soften: float | None = None, bridge: float = 0.0) -> np.ndarray:
    """``image`` with the ``target`` pixels coloured from the nearby ``source`` pixels: each takes the colour
    of its nearest source pixel, then the filled pixels are softened by a Gaussian of ``soften`` px
    normalised over the source and target pixels (nothing else bleeds in).

    Taking the nearest colour keeps the clothes' edges (a cuff above the thigh stays denim over skin);
    averaging every colour around the hole blended them into a colour found nowhere on the character and
    did worse on held-out holes of five real characters (docs/PUPPET.md).

    ``margin`` > 0 leaves out the source pixels within that many pixels of the target: along a limb lying
    over the clothes, the clothes' last pixels are blended with the limb's colour by the antialiasing and
    would spread a streak of it into the fill.

    ``stretch`` > 1 measures the distance to the source that many times longer across the image than down
    it: a notch in the body's side is then filled from the clothes above and below it, at the same distance
    from the outline (a garment's shading, seams and hems run down the body), rather than from the middle
    of the body.

    ``bridge`` > 0 first fills each target pixel that lies on a line between two source pixels at most that
    many px apart (through source and target pixels) by interpolating between them, along the line whose
    ends agree best (:func:`_bridge`); the nearest colour fills the rest. In notches at the body's side this
    cut the error on held-out holes of five characters by 9 % (docs/PUPPET.md).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        source: ``(H, W)`` bool pixels whose colours are kept and spread.
        target: ``(H, W)`` bool pixels to fill.
        margin: source pixels this close to the target (px) are not used, when others remain.
        stretch: weight of horizontal over vertical distance (1 = Euclidean).
        bridge: longest line (px) interpolated across the target; 0 = nearest colours only.
        soften: sigma (px) of the softening; 0 = the nearest colours as they are; ``None`` =
            :data:`FILL_SOFTEN` x the image height.

    Returns:
        ``(H, W, 3)`` uint8 copy.
    """
    out = image.copy()
    todo = target & ~source
    passable = source | todo if bridge > 0 else None  # before the margin: lines of a bridged fill cross it
    if margin > 0:
        kept = source & (cv2.dilate(todo.astype(np.uint8), disc(margin)) == 0)
        source = kept if kept.any() else source
    if not todo.any() or not source.any():
        return out
    _, (iy, ix) = ndimage.distance_transform_edt(~source, sampling=(1.0, stretch), return_indices=True)
    out[todo] = image[iy[todo], ix[todo]]
    if bridge > 0:
        ys, xs, found = _bridge(image, source, todo, passable, bridge)
        ok = ~np.isnan(found[:, 0])
        out[ys[ok], xs[ok]] = np.clip(found[ok] + 0.5, 0, 255).astype(np.uint8)
    if soften is None:
        soften = FILL_SOFTEN * image.shape[0]
    if soften > 0:
        # only the box around the filled pixels and the kernel's reach (4 sigma in OpenCV) is blurred
        ys, xs = np.nonzero(todo)
        h, w = todo.shape
        pad = int(4 * soften) + 2
        win = (slice(max(0, ys.min() - pad), min(h, ys.max() + pad + 1)),
               slice(max(0, xs.min() - pad), min(w, xs.max() + pad + 1)))
        weight = (source | todo)[win].astype(np.float32)
        num = cv2.GaussianBlur(out[win].astype(np.float32) * weight[..., None], (0, 0), soften)
        den = cv2.GaussianBlur(weight, (0, 0), soften)
        inner = todo[win]
        out[win][inner] = np.clip(num[inner] / den[inner, None] + 0.5, 0, 255).astype(np.uint8)
    return out


class PuppetRenderer(Renderer):
    """CPU puppet renderer (name ``"puppet"``). See the module docstring for the method.

    Args:
        **options: fields of :class:`PuppetOptions`; unknown names raise :class:`ConfigError`.
    """

    name = "puppet"

    def __init__(self, **options) -> None:
        known = {f.name for f in fields(PuppetOptions)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown puppet option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        self.options = PuppetOptions(**options)
        self._backdrop = parse_backdrop(self.options.background)
        self.transparent = self._backdrop == TRANSPARENT
        self.channels = 4 if self.transparent else 3
        self.rig: Rig | None = None
        self.layers: list[PuppetLayer] = []
        self.background: np.ndarray | None = None
        self.alpha: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self._last_joints: np.ndarray | None = None
        self._last_order: list[str] | None = None
        self._hand_bends: dict[str, float] | None = None
        self._skull_weight: float | None = None

    @property
    def min_height(self) -> int:  # type: ignore[override]
        """Smallest canvas height: the mesh's rows need at least 2 px each (``mesh_density`` rows)."""
        return math.ceil(2 * self.options.mesh_density)

    # --- prepare ------------------------------------------------------------------------------------
    def prepare(self, reference: np.ndarray, reference_pose: PoseFrame, mask: np.ndarray | None = None) -> None:
        """Build the puppet of a character (see :meth:`Renderer.prepare`)."""
        ref = np.asarray(reference)
        if ref.ndim != 3 or ref.shape[2] != 3 or ref.dtype != np.uint8:
            raise InputError(f"reference image must be (H, W, 3) uint8 RGB, got {ref.shape} {ref.dtype}")
        h, w = ref.shape[:2]
        if (reference_pose.width, reference_pose.height) != (w, h):
            raise InputError(f"reference pose is for {reference_pose.width}x{reference_pose.height} but the image is "
                             f"{w}x{h}; resize the pose onto the reference canvas")
        opt = self.options
        if h < self.min_height:
            raise InputError(f"a {w}x{h} canvas is too small for the puppet renderer: its mesh of {opt.mesh_density} "
                             f"rows needs at least {self.min_height} px of height; choose a larger output size")
        hole = None  # what the plate loses beyond the cut-out (None: the cut-out alone)
        if mask is not None:
            alpha = prepare_mask(mask, (h, w))
        else:
            prob = coarse_mask(ref, opt.segmentation, reference_pose)
            alpha = segment_person(ref, reference_pose,
                                   SegmentationConfig(model=opt.segmentation, refine=opt.refine_mask,
                                                      threshold=opt.mask_threshold, snap=opt.mask_snap,
                                                      feet=opt.refine_feet),
                                   probability=prob)
            if opt.hole_threshold < 1.0:
                hole = np.maximum(alpha, uncertain_fringe(alpha, prob, opt.hole_threshold))
            if opt.hole_colour_ratio > 0:
                hole = np.maximum(alpha if hole is None else hole, colour_fringe(ref, alpha, opt.hole_colour_ratio))
        rig = Rig(reference_pose, opt.score_threshold, opt.leg_layers, opt.thigh_body_fraction, opt.torso_affine,
                  opt.torso_stiffness, opt.head_from_ears, opt.skirt_stretch)
        region = alpha > 0.02
        padding = border_padding(region, opt.border_extend * h)
        labels, owners = rig.layer_maps(region)
        labels = rig.skirt_hem(ref, labels)
        if opt.colour_split:
            labels = rig.hair_over_arms(ref, rig.refine_limb_labels(ref, labels))
        labels = absorb_islands(labels, owners=owners)
        plate = None  # the inpainted background, once made
        work = ref  # the colours the layers are textured with
        if mask is None and opt.translucent:
            # sheer sleeves, glowing rims: left in the plate they would float there as a ghost (.translucent)
            legs = [rig.layers.index(n) for n in LEG_LAYERS if n in rig.layers]
            fringe = translucent_fringe(ref, alpha, exclude=np.isin(labels, legs))
            if fringe.any():
                hole = np.maximum(alpha if hole is None else hole, fringe.astype(np.float32))
                plate = self._plate(ref, hole, rig)
                extra, work = attach_translucent(ref, plate, fringe)
                attached = extra > 0
                if attached.any():
                    alpha = np.maximum(alpha, extra)
                    labels, owners = nearest_labels(labels, owners, attached)
                    if "body" in rig.layers:  # a halo or hair tips by a hand raised to the face stay with the head
                        head = attached & rig.head_zone(attached.shape)
                        labels[head] = owners[head] = rig.layers.index("body")
                    region = region | attached
                    logger.info("translucent parts beside the character (%d px) attached to it", int(attached.sum()))
        # the layers are meshed and textured on the working image: the reference continued past the sides
        # of the image that cut the character (.offcanvas), without the edge line many images end in
        inset = inset_lines(h)
        colours = repair_edge_lines(work, region, padding, inset) if any(padding) else work
        spacing = h / float(opt.mesh_density)
        margin = max(1, int(round(opt.layer_margin * h)))
        grow = disc(margin)
        region_grown = cv2.dilate(region.astype(np.uint8), grow)

        underlay = inside = None
        covered = np.full(labels.shape, -1)
        if "body" in rig.layers and opt.body_underlay > 0:
            underlay = body_underlay(labels, rig.layers.index("body"), region, opt.body_underlay * rig.limb_radius)
            underlay &= ~rig.head_zone(underlay.shape)  # a raised hand beside the face is no notch of the body
            # arms lying over the body or the legs inside their outline (hands clasped over a skirt)
            beneath = [rig.layers.index(n) for n in ("body", "right_leg", "left_leg") if n in rig.layers]
            arms = [rig.layers.index(n) for n in ("right_arm", "left_arm") if n in rig.layers]
            covered = covered_by_limbs(labels, beneath, arms, COVERED_LIMB_RADII * rig.limb_radius,
                                       min_width=0.5 * rig.limb_radius)
            inside = (covered == rig.layers.index("body")) & ~underlay
            underlay |= inside
        # (layer name, rig layer whose bones move it, own pixels, colours), back to front
        parts: list[tuple[str, str, np.ndarray, np.ndarray]] = []
        for li, name in enumerate(rig.layers):
            own = (labels == li).astype(np.uint8)
            image = colours
            if opt.leg_underlay and name in ("right_leg", "left_leg") and "body" in rig.layers:
                # the leg continues under the body's share of its thigh, in the leg's own colours: a gap
                # between the two (the skirt hangs, the thigh stretches) or a thigh swung out from under a
                # skirt shows skin, not the background plate
                hidden = (labels == rig.layers.index("body")) & (owners == li)
                # only a band next to the leg's own pixels: the rest stays under the body (and costs raster time)
                hidden &= cv2.dilate(own, disc(LEG_UNDERLAY_RADII * rig.limb_radius)) > 0
                hidden |= covered == li  # and under an arm lying over it (a hand on the thigh)
                if hidden.any():
                    image = extend_colours(colours, own.astype(bool), hidden)
                    own = own | hidden.astype(np.uint8)
            if name == "body" and underlay is not None and underlay.any():
                # the body continues under the limbs that notch it (a hand on the hip, an arm along the
                # side): its own colours pushed into those pixels, so a limb moving away reveals clothes
                source, margin = own.astype(bool), max(2, round(UNDERLAY_SOURCE_MARGIN * h))
                # the body's last pixels along an arm lying over it carry the arm's colours (antialiasing, a
                # label edge a pixel off): they are filled too, or a light outline of the hand is left on
                # the clothes when it moves away
                side = underlay & ~inside
                side_ring = edge_ring(source, side & np.isin(labels, arms), UNDERLAY_EDGE_RING * h)
                inside_ring = edge_ring(source, inside, UNDERLAY_EDGE_RING * h) & ~side_ring
                source = source & ~side_ring & ~inside_ring
                image = extend_colours(colours, source, side | side_ring, margin, SIDE_FILL_STRETCH,
                                       bridge=SIDE_FILL_BRIDGE_RADII * rig.limb_radius)
                image = extend_colours(image, source, inside | inside_ring, margin)
                own = own | underlay.astype(np.uint8)
            if name == "body":
                parts.extend(self._limb_underlays(rig, labels, region, colours))
            parts.append((name, name, own, image))
        # meshes keep canvas coordinates; their textures are looked up in the working image
        origin = np.array([padding[2], padding[0]], np.float64)
        alpha_work = extend_past_border(hold_mask_at_border(alpha, padding, inset), padding)
        region_grown = extend_past_border(region_grown, padding)
        front_leg = None
        if BACK_LEG in rig.layers and FRONT_LEG in rig.layers:
            front_leg = extend_past_border((labels == rig.layers.index(FRONT_LEG)).astype(np.uint8), padding)
        self.layers = []
        for name, rig_layer, own, image in parts:
            if own.sum() < spacing * spacing:
                logger.info("layer %s is (almost) empty; skipped", name)
                continue
            own, image = extend_past_border(own, padding), extend_past_border(image, padding, SOFTEN)
            if any(padding) and rig_layer != "body":
                own = self._within_reach(own, rig, rig_layer, padding, h, w)
            mesh_region = cv2.dilate(own, grow) & region_grown
            try:
                work_mesh = triangulate_mask(mesh_region, spacing)
            except InputError:
                logger.info("layer %s could not be meshed; skipped", name)
                continue
            mesh = Mesh(work_mesh.vertices - origin, work_mesh.triangles)
            # layer alpha: the body extends a little under the limbs so that seams never show the plate, and
            # so does the leg drawn behind under the other leg where they touch
            if name == "body":
                cover = cv2.dilate(own, grow)
            elif name == BACK_LEG and front_leg is not None:
                cover = own | (cv2.dilate(own, grow) & front_leg)
            else:
                cover = own
            layer_alpha = alpha_work * cv2.GaussianBlur(cover.astype(np.float32), (0, 0), 0.7)
            loose = extend_past_border(rig.looseness((h, w), rig_layer), padding) if opt.loose_feather > 0 else None
            texture = layer_texture(image, layer_alpha, opt.edge_feather * h, loose, opt.loose_feather * h)
            # rest triangles in texture (working image) coordinates
            layer = PuppetLayer(name, mesh, work_mesh.vertices[work_mesh.triangles].copy(), texture)
            if opt.deformation == "skinning":
                layer.weights = rig.skinning_weights(mesh.vertices, rig_layer, opt.skinning_power)
            else:
                pts, spec = self._arap_handles(rig, name)
                layer.arap = ARAPDeformer(mesh, pts, opt.arap_handle_weight)
                layer.handles = spec
            self.layers.append(layer)
        if any(padding):
            logger.info("character cut by the image border (%s): layers continue %d px past it",
                        ", ".join(side for side, p in zip(("top", "bottom", "left", "right"), padding) if p),
                        max(padding))
        if not self.layers:
            raise InputError("reference character could not be meshed (mask too small); pass a larger mask or image")
        backdrop = backdrop_image(self._backdrop, (w, h))
        if backdrop is None:
            backdrop = plate if plate is not None else self._plate(ref, alpha if hole is None else hole, rig)
        self.background = backdrop
        self.alpha, self.labels, self.rig = alpha, labels, rig
        self._last_joints = None
        self._last_order = None
        self._hand_bends = None
        self._skull_weight = None
        logger.info("puppet prepared: %s", ", ".join(f"{l.name} {l.mesh.num_vertices}v/{l.mesh.num_triangles}t"
                                                     for l in self.layers))

    def _plate(self, reference: np.ndarray, hole: np.ndarray, rig: Rig) -> np.ndarray:
        """The reference's background with ``hole`` (float ``(H, W)``, > 0.02 = gone) inpainted, the hole
        grown by ``head_hole`` within the rig's head zone."""
        opt = self.options
        if opt.head_hole > 0:
            zone = rig.head_zone(hole.shape)
            grown = cv2.dilate(((hole > 0.02) & zone).astype(np.uint8), disc(opt.head_hole * hole.shape[0])) > 0
            hole = np.maximum(hole, (grown & zone).astype(np.float32))
        return inpaint_background(reference, hole, opt.inpaint, dilate=opt.inpaint_dilate, radius=opt.inpaint_radius,
                                  work_side=opt.inpaint_side, coarse_side=opt.inpaint_coarse_side)

    @staticmethod
    def _within_reach(own: np.ndarray, rig: Rig, layer: str, padding: tuple[int, int, int, int], h: int,
                      w: int) -> np.ndarray:
        """A limb layer's pixels on the working image, its continuation past the border cut back to within
        :data:`LIMB_REACH_RADII` limb radii of the limb's own bones: a forearm cut by the frame goes on to its
        hand's end, not a quarter of the height further."""
        top, _, left, _ = padding
        outside = own.astype(bool).copy()
        outside[top:top + h, left:left + w] = False
        ys, xs = np.nonzero(outside)
        if not len(ys):
            return own
        bones = [k for k, b in enumerate(rig.bones) if b.layer == layer and b.kind != "torso"]
        points = np.stack([xs - left, ys - top], axis=1).astype(np.float64)
        reach = rig.bone_scores(points, layer)[:, bones].min(axis=1) if bones else np.full(len(ys), np.inf)
        far = reach > LIMB_REACH_RADII * rig.limb_radius
        out = own.copy()
        out[ys[far], xs[far]] = 0
        return out

    def _limb_underlays(self, rig: Rig, labels: np.ndarray, region: np.ndarray,
                        ref: np.ndarray) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
        """The arms' hidden parts (``limb_underlay``, :meth:`Rig.hidden_limb`) coloured from the arms, as layers
        ``<arm>_under`` moved by the arm's bones and drawn right behind the body."""
        opt = self.options
        if not opt.limb_underlay or opt.deformation != "skinning":
            return []
        out = []
        # the arm's own pixels along the hidden part back the seam: each layer's silhouette is feathered, and
        # two soft edges meeting inside the arm let the plate show through (a faded upper arm once raised)
        seam = disc(max(1, int(np.ceil(SEAM_BACKING_SIGMAS * opt.edge_feather * ref.shape[0]))))
        for arm in ("right_arm", "left_arm"):
            hidden = rig.hidden_limb(labels, arm) & region
            if hidden.any():
                own = labels == rig.layers.index(arm)
                backing = own & (cv2.dilate(hidden.astype(np.uint8), seam) > 0)
                out.append((f"{arm}_under", arm, (hidden | backing).astype(np.uint8),
                            extend_colours(ref, own, hidden)))
        return out

    @staticmethod
    def _arap_handles(rig: Rig, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """ARAP handles of a layer: its joints (index < 18) and end-bone tips (18 + bone index)."""
        from reference.rig import ATTACH_JOINT, BONES

        joints: set[int] = set()
        tips: list[int] = []
        for k, bone in enumerate(rig.bones):
            kind, ja, jb, lay = BONES[bone.name]
            if lay != layer:
                continue
            if kind == "torso":
                joints.update(j for j in (1, 2, 5, 8, 11))
            elif kind == "head":
                joints.update(j for j in (0, 1, 14, 15, 16, 17) if rig.ref_visible[j])
            elif kind == "limb":
                joints.update((ja, jb))
            else:
                tips.append(k)
        if layer in ATTACH_JOINT:
            joints.add(ATTACH_JOINT[layer])
        spec = np.array(sorted(joints) + [18 + k for k in tips], np.int64)
        points = np.array([rig.ref_joints[s] if s < 18 else rig.bones[s - 18].b for s in spec])
        return points, spec

    # --- render -------------------------------------------------------------------------------------
    def render(self, poses: PoseSequence) -> Iterator[np.ndarray]:
        """Yield one ``(H, W, 3)`` uint8 RGB frame per pose (poses already on the reference canvas); ``(H, W, 4)``
        RGBA with ``background="transparent"``."""
        if self.rig is None or self.background is None:
            raise InputError("puppet renderer is not prepared; call prepare(reference, reference_pose) first")
        h, w = self.background.shape[:2]
        if (poses.width, poses.height) != (w, h):
            raise InputError(f"driving poses are for {poses.width}x{poses.height} but the reference canvas is {w}x{h}; "
                             "retarget them onto the reference canvas first")
        frames = tqdm(poses, total=len(poses), desc="puppet", unit="frame", disable=not self.options.progress)
        if self.options.threads == 1:
            for pose in frames:
                yield self.render_frame(pose)
            return
        # Plan each frame in order (stateful), draw up to 2 x threads frames ahead in a pool, yield in order.
        with ThreadPoolExecutor(self.options.threads, thread_name_prefix="puppet") as pool:
            pending: deque = deque()
            for pose in frames:
                pending.append(pool.submit(self._draw, *self._plan(pose)))
                if len(pending) >= 2 * self.options.threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def render_frame(self, pose: PoseFrame) -> np.ndarray:
        """Render one frame (keeps the last known joints for the next call)."""
        return self._draw(*self._plan(pose))

    def _plan(self, pose: PoseFrame) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
        """Joints, bone transforms (``"*"``: every layer; ``"body"``: the body layer's) and draw order of one
        frame; updates the frame-to-frame state."""
        rig = self.rig
        if rig is None or self.background is None:
            raise InputError("puppet renderer is not prepared; call prepare(reference, reference_pose) first")
        self._last_joints = rig.complete_joints(pose, self._last_joints)
        joints = rig.steady_torso(self._last_joints)
        bends = None
        if self.options.hands_from_keypoints:
            bends = self._hand_bends = rig.hand_bends(joints, pose, self._hand_bends)
        target = rig.skull_target(pose.visible(rig.threshold)[layout.BODY])
        if self._skull_weight is None:
            self._skull_weight = target
        else:  # fade between the skull and the face-feature fits instead of switching (SKULL_FADE)
            self._skull_weight += float(np.clip(target - self._skull_weight, -SKULL_FADE, SKULL_FADE))
        transforms = rig.bone_transforms(joints, pose if self.options.head_from_face else None, bends,
                                         skull_weight=self._skull_weight)
        order = draw_order([l.name for l in self.layers], pose, joints, self.options.layering,
                           previous=self._last_order)
        self._last_order = order
        return joints, {"*": transforms, "body": rig.body_transforms(joints, transforms)}, order

    def _draw(self, joints: np.ndarray, transforms: dict[str, np.ndarray], order: list[str]) -> np.ndarray:
        """Deform and composite the layers in ``order`` over the background (no state: thread-safe)."""
        by_name = {layer.name: layer for layer in self.layers}
        # RGBA working canvas: the premultiplied layers composite with whole-pixel uint8 ops (the 4th
        # channel accumulates coverage and is dropped at the end)
        if self.transparent:  # premultiplied RGBA from empty: the 4th channel is the character's coverage
            canvas = np.zeros(self.background.shape[:2] + (4,), np.uint8)
        else:
            canvas = cv2.cvtColor(self.background, cv2.COLOR_RGB2RGBA)
        for name in order:
            layer = by_name[name]
            verts = self._deform(layer, joints, transforms.get(name, transforms["*"]))
            self._composite(canvas, layer, verts)
        if self.transparent:
            out = unpremultiply(canvas)
            # where two layers' soft edges meet inside the character (a seam the plate fills otherwise) the
            # coverage stays a little below 1: a small closing makes the inside opaque, the outline unchanged
            out[..., 3] = cv2.morphologyEx(out[..., 3], cv2.MORPH_CLOSE, _SEAM_KERNEL)
            return out
        return cv2.cvtColor(canvas, cv2.COLOR_RGBA2RGB)

    def _deform(self, layer: PuppetLayer, joints: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        rest = layer.mesh.vertices
        if layer.weights is not None:
            # linear blend skinning: v' = sum_b w_b (M_b [v; 1])
            lin = transforms[:, :, :2]  # (B, 2, 2)
            per_bone = np.einsum("bij,nj->nbi", lin, rest) + transforms[None, :, :, 2]  # (N, B, 2)
            return np.einsum("nb,nbi->ni", layer.weights, per_bone)
        spec = layer.handles
        targets = np.empty((len(spec), 2))
        for i, s in enumerate(spec):
            if s < 18:
                targets[i] = joints[s]
            else:
                m = transforms[s - 18]
                targets[i] = m[:, :2] @ self.rig.bones[s - 18].b + m[:, 2]
        return layer.arap.deform(targets)

    @staticmethod
    def _composite(canvas: np.ndarray, layer: PuppetLayer, verts: np.ndarray) -> None:
        h, w = canvas.shape[:2]
        if not np.isfinite(verts).all():
            logger.warning("layer %s deformed to non-finite positions; skipped this frame", layer.name)
            return
        x0 = int(max(0, np.floor(verts[:, 0].min())))
        y0 = int(max(0, np.floor(verts[:, 1].min())))
        x1 = int(min(w, np.ceil(verts[:, 0].max()) + 1))
        y1 = int(min(h, np.ceil(verts[:, 1].max()) + 1))
        if x1 <= x0 or y1 <= y0:
            return
        bw, bh = x1 - x0, y1 - y0
        tri = verts[layer.mesh.triangles]
        aff = triangle_affines(tri, layer.ref_tris)  # deformed -> reference
        rows, cols, t = rasterize_triangles(tri - np.array([x0, y0]), bw, bh)
        coef = aff.reshape(-1, 6).astype(np.float32)[t]  # (P, 6) one gather per pixel
        gx = cols.astype(np.float32) + np.float32(x0)
        gy = rows.astype(np.float32) + np.float32(y0)
        flat = rows * bw + cols
        mapx = np.full(bh * bw, _OUTSIDE, np.float32)
        mapy = np.full(bh * bw, _OUTSIDE, np.float32)
        mapx[flat] = coef[:, 0] * gx + coef[:, 1] * gy + coef[:, 2]
        mapy[flat] = coef[:, 3] * gx + coef[:, 4] * gy + coef[:, 5]
        warped = cv2.remap(layer.texture, mapx.reshape(bh, bw), mapy.reshape(bh, bw), cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        # premultiplied "over" in uint8: canvas = canvas * (1 - a) + colour
        inv = 255 - warped[..., 3]
        kept = cv2.multiply(canvas[y0:y1, x0:x1], cv2.merge([inv, inv, inv, inv]), scale=1.0 / 255.0)
        canvas[y0:y1, x0:x1] = cv2.add(kept, warped)
