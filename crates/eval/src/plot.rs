//! Plots: the DET curve (APCER vs BPCER on normal-deviate axes) and the
//! per-class score histogram, each written as PNG and SVG.
//!
//! Text is rendered with an embedded Noto Sans (via plotters' `ab_glyph`
//! feature), so PNGs have readable labels even on machines without system
//! fonts. SVGs carry real `<text>` elements (font-family `sans-serif`).

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

use super::metrics::{Counts, DetPoint};
use super::stats::inverse_normal_cdf;
use super::{EvalError, Sample};

const FONT: &str = "sans-serif";
const DET_SIZE: (u32, u32) = (900, 860);
const HIST_SIZE: (u32, u32) = (1000, 620);
const CAPTION_HEIGHT: u32 = 56;

const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const BONA_FIDE_COLOR: RGBColor = RGBColor(0x1b, 0x9e, 0x77);
const ATTACK_COLOR: RGBColor = RGBColor(0xd9, 0x5f, 0x02);
const OP_COLOR: RGBColor = RGBColor(0xc0, 0x00, 0x30);
const GREY: RGBColor = RGBColor(0x80, 0x80, 0x80);

/// Probabilities at which the DET axes get tick labels.
const DET_TICKS: [f64; 16] = [
    1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999,
];
/// Distance (in normal deviates) between the outermost tick and the edge
/// line where rates of exactly 0 or 1 are drawn.
const EDGE_GAP: f64 = 0.35;
/// Extra room beyond the edge lines.
const AXIS_PAD: f64 = 0.2;

fn plot_err(path: &Path, message: impl ToString) -> EvalError {
    EvalError::Plot {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Renders into an in-memory RGB buffer with plotters' bitmap backend and
/// encodes it as PNG with the crate's own `image` (plotters' encoder would
/// pull in a second, older `image`/`png`).
fn write_png<F>(path: &Path, size: (u32, u32), draw: F) -> Result<(), EvalError>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
{
    let (w, h) = size;
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        draw(&root).map_err(|m| plot_err(path, m))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| plot_err(path, "bitmap buffer has the wrong size"))?;
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| plot_err(path, e))
}

/// Registers the embedded font once per process.
fn ensure_font(path: &Path) -> Result<(), EvalError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| register_font(FONT, FontStyle::Normal, ttf_noto_sans::REGULAR).is_ok());
    if ok {
        Ok(())
    } else {
        Err(plot_err(
            path,
            "the embedded Noto Sans font could not be loaded",
        ))
    }
}

/// A plot title with the model name and sample counts, e.g.
/// `"model-x: 40 bona fide, 60 attacks (print 30, replay 30)"`.
pub fn title_with_counts(model: &str, counts: &Counts) -> String {
    let a = counts.attack_total();
    let per_type: Vec<String> = counts
        .attacks
        .iter()
        .filter(|(_, c)| c.total > 0)
        .map(|(k, c)| format!("{k} {}", c.total))
        .collect();
    format!(
        "{model}: {} bona fide, {} attacks ({})",
        counts.bona_fide.total,
        a.total,
        per_type.join(", ")
    )
}

/// Formats a probability as a percent tick label: 0.001 → "0.1%", 0.4 → "40%".
fn pct_label(p: f64) -> String {
    let s = format!("{:.4}", p * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// The probit axis shared by both DET axes (square plot, so the diagonal
/// APCER = BPCER is meaningful).
#[derive(Debug, Clone)]
struct ProbitAxis {
    zero_edge: f64,
    one_edge: f64,
    /// (position in deviates, label)
    keys: Vec<(f64, String)>,
}

impl ProbitAxis {
    fn new<I: IntoIterator<Item = f64>>(rates: I) -> Self {
        // Always show at least 0.1% .. 40%, widened to every rate in (0, 1).
        let (mut lo, mut hi) = (1e-3_f64, 0.4_f64);
        for r in rates {
            if r > 0.0 && r < 1.0 {
                lo = lo.min(r);
                hi = hi.max(r);
            }
        }
        let lo_tick = DET_TICKS
            .iter()
            .copied()
            .filter(|t| *t <= lo)
            .fold(DET_TICKS[0], f64::max);
        let hi_tick = DET_TICKS
            .iter()
            .copied()
            .filter(|t| *t >= hi)
            .fold(DET_TICKS[DET_TICKS.len() - 1], f64::min);
        let zero_edge = inverse_normal_cdf(lo_tick) - EDGE_GAP;
        let one_edge = inverse_normal_cdf(hi_tick) + EDGE_GAP;
        let mut keys = vec![(zero_edge, "0%".to_string())];
        keys.extend(
            DET_TICKS
                .iter()
                .filter(|t| **t >= lo_tick && **t <= hi_tick)
                .map(|t| (inverse_normal_cdf(*t), pct_label(*t))),
        );
        keys.push((one_edge, "100%".to_string()));
        Self {
            zero_edge,
            one_edge,
            keys,
        }
    }

    fn coord(&self) -> KeyedAxis {
        KeyedAxis {
            lo: self.zero_edge - AXIS_PAD,
            hi: self.one_edge + AXIS_PAD,
            keys: self.keys.iter().map(|(k, _)| *k).collect(),
        }
    }

    /// Rate → deviate; 0 and 1 (and anything beyond the edges) go to the
    /// edge lines.
    fn map(&self, p: f64) -> f64 {
        if p <= 0.0 {
            self.zero_edge
        } else if p >= 1.0 {
            self.one_edge
        } else {
            inverse_normal_cdf(p).clamp(self.zero_edge, self.one_edge)
        }
    }

    fn label(&self, v: f64) -> String {
        self.keys
            .iter()
            .find(|(k, _)| (k - v).abs() < 1e-9)
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    }
}

/// A linear f64 axis whose tick marks are exactly `keys` (plotters'
/// `WithKeyPoints` over `f64` does not support label formatters).
#[derive(Debug, Clone)]
struct KeyedAxis {
    lo: f64,
    hi: f64,
    keys: Vec<f64>,
}

impl Ranged for KeyedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let frac = (value - self.lo) / (self.hi - self.lo);
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// Writes the DET curve (x = APCER, y = BPCER, both probit-scaled, percent
/// tick labels) to `path_png` and `path_svg`. `op` marks the operating
/// threshold. Rates of exactly 0 or 1 are clipped to dashed edge lines
/// labelled 0% / 100%, as the caption says.
pub fn det_curve(
    points: &[DetPoint],
    op: Option<&DetPoint>,
    title: &str,
    path_png: &Path,
    path_svg: &Path,
) -> Result<(), EvalError> {
    det_curve_labelled(points, op, title, &DetLabels::PAD, path_png, path_svg)
}

/// The names a DET plot gives its two rates (x = `DetPoint::apcer`, y = `DetPoint::bpcer`).
#[derive(Debug, Clone, Copy)]
pub struct DetLabels {
    pub x: &'static str,
    pub y: &'static str,
    pub x_desc: &'static str,
    pub y_desc: &'static str,
    pub curve: &'static str,
}

impl DetLabels {
    /// ISO/IEC 30107-3 (presentation attack detection).
    pub const PAD: DetLabels = DetLabels {
        x: "APCER",
        y: "BPCER",
        x_desc: "APCER (attack presentations accepted as bona fide), normal-deviate scale",
        y_desc: "BPCER (bona fide rejected), normal-deviate scale",
        curve: "DET: APCER (max over attack types) vs BPCER",
    };
    /// ISO/IEC 19795-1 (verification): x = FMR, y = FNMR.
    pub const MATCH: DetLabels = DetLabels {
        x: "FMR",
        y: "FNMR",
        x_desc: "FMR (impostor comparisons accepted as a match), normal-deviate scale",
        y_desc: "FNMR (genuine comparisons rejected), normal-deviate scale",
        curve: "DET: FMR vs FNMR",
    };
}

/// [`det_curve`] with the rates named by `labels`.
pub fn det_curve_labelled(
    points: &[DetPoint],
    op: Option<&DetPoint>,
    title: &str,
    labels: &DetLabels,
    path_png: &Path,
    path_svg: &Path,
) -> Result<(), EvalError> {
    ensure_font(path_png)?;
    let axis = ProbitAxis::new(
        points
            .iter()
            .chain(op)
            .flat_map(|p| [p.apcer, p.bpcer])
            .filter(|r| r.is_finite()),
    );
    write_png(path_png, DET_SIZE, |root| {
        draw_det(root, points, op, title, &axis, labels)
    })?;
    {
        let root = SVGBackend::new(path_svg, DET_SIZE).into_drawing_area();
        draw_det(&root, points, op, title, &axis, labels).map_err(|m| plot_err(path_svg, m))?;
        root.present().map_err(|e| plot_err(path_svg, e))?;
    }
    Ok(())
}

fn draw_det<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[DetPoint],
    op: Option<&DetPoint>,
    title: &str,
    axis: &ProbitAxis,
    labels: &DetLabels,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (h, _) = (root.dim_in_pixel().1, ());
    let (upper, lower) = root.split_vertically(h.saturating_sub(CAPTION_HEIGHT));

    let mut chart = ChartBuilder::on(&upper)
        .caption(title, (FONT, 20))
        .margin(18)
        .x_label_area_size(56)
        .y_label_area_size(76)
        .build_cartesian_2d(axis.coord(), axis.coord())
        .map_err(e)?;

    let fmt = |v: &f64| axis.label(*v);
    chart
        .configure_mesh()
        .x_desc(labels.x_desc)
        .y_desc(labels.y_desc)
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(e)?;

    let (lo, hi) = (axis.zero_edge, axis.one_edge);
    let edge_style = GREY.stroke_width(1);
    for line in [
        vec![(lo, lo), (lo, hi)],
        vec![(lo, lo), (hi, lo)],
        vec![(hi, lo), (hi, hi)],
        vec![(lo, hi), (hi, hi)],
    ] {
        chart
            .draw_series(DashedLineSeries::new(line, 6, 4, edge_style))
            .map_err(e)?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(lo, lo), (lo, lo)],
            edge_style,
        )))
        .map_err(e)?
        .label("0% / 100% (no probit value): clipped to dashed edges")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREY.stroke_width(1)));

    chart
        .draw_series(LineSeries::new(
            vec![(lo, lo), (hi, hi)],
            BLACK.mix(0.35).stroke_width(1),
        ))
        .map_err(e)?
        .label(format!("{} = {} (EER line)", labels.x, labels.y))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.35)));

    let curve: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (axis.map(p.apcer), axis.map(p.bpcer)))
        .collect();
    chart
        .draw_series(LineSeries::new(curve.clone(), BLUE.stroke_width(2)))
        .map_err(e)?
        .label(labels.curve)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    if curve.len() <= 300 {
        chart
            .draw_series(curve.iter().map(|c| Circle::new(*c, 2, BLUE.filled())))
            .map_err(e)?;
    }

    if let Some(op) = op {
        let at = (axis.map(op.apcer), axis.map(op.bpcer));
        let short = format!("t = {}", op.threshold);
        // Keep the label inside the plot: right of the marker on the left
        // half, left of it on the right half.
        let (dx, hpos) = if at.0 < (axis.zero_edge + axis.one_edge) / 2.0 {
            (10, HPos::Left)
        } else {
            (-10, HPos::Right)
        };
        let label_style = (FONT, 16)
            .into_font()
            .color(&OP_COLOR)
            .pos(Pos::new(hpos, VPos::Bottom));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at(at)
                    + Circle::new((0, 0), 7, OP_COLOR.filled())
                    + Circle::new((0, 0), 7, WHITE.stroke_width(1))
                    + Text::new(short, (dx, -8), label_style),
            ))
            .map_err(e)?
            .label(format!(
                "operating threshold {}: {} {}, {} {}",
                op.threshold,
                labels.x,
                pct_label_2(op.apcer),
                labels.y,
                pct_label_2(op.bpcer)
            ))
            .legend(|(x, y)| Circle::new((x + 10, y), 5, OP_COLOR.filled()));
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 14))
        .draw()
        .map_err(e)?;

    lower
        .draw(&Text::new(
            "Axes are normal deviates (probit) labelled in percent. Rates of exactly 0% or 100% \
             have no probit value",
            (20, 6),
            (FONT, 14),
        ))
        .map_err(e)?;
    lower
        .draw(&Text::new(
            "and are drawn on the dashed edge lines labelled 0% / 100%. Decision: accept iff \
             score >= threshold.",
            (20, 26),
            (FONT, 14),
        ))
        .map_err(e)?;
    Ok(())
}

fn pct_label_2(p: f64) -> String {
    format!("{:.2}%", p * 100.0)
}

/// Writes a histogram of scores per class (bona fide vs all attacks, each
/// normalised to its own number of scored samples) with the threshold as a
/// vertical line, to `path_png` and `path_svg`. Gated samples have no score
/// and are only counted in the caption.
pub fn score_histogram(
    samples: &[Sample],
    threshold: f64,
    bins: usize,
    title: &str,
    path_png: &Path,
    path_svg: &Path,
) -> Result<(), EvalError> {
    if bins == 0 {
        return Err(EvalError::InvalidBins);
    }
    if !threshold.is_finite() {
        return Err(EvalError::InvalidThreshold(threshold));
    }
    ensure_font(path_png)?;
    let mut bona = Vec::new();
    let mut attack = Vec::new();
    let (mut gated_bona, mut gated_attack) = (0usize, 0usize);
    for s in samples {
        match (s.class.is_bona_fide(), s.score) {
            (true, Some(v)) if v.is_finite() => bona.push(v),
            (false, Some(v)) if v.is_finite() => attack.push(v),
            (true, None) => gated_bona += 1,
            (false, None) => gated_attack += 1,
            (_, Some(v)) => {
                return Err(EvalError::NonFiniteScore {
                    id: s.id.clone(),
                    score: v,
                })
            }
        }
    }
    let info = HistInfo {
        n_bona: bona.len(),
        n_attack: attack.len(),
        gated_bona,
        gated_attack,
        threshold,
        labels: &HistLabels::PAD,
    };
    write_hist(&bona, &attack, bins, title, &info, path_png, path_svg)
}

/// What a histogram calls its axis, its two classes and its unscored samples.
#[derive(Debug, Clone, Copy)]
pub struct HistLabels {
    pub x_desc: &'static str,
    pub positive: &'static str,
    pub negative: &'static str,
    /// The classes in the caption's count of unscored samples.
    pub counted: (&'static str, &'static str),
    pub not_scored: &'static str,
}

impl HistLabels {
    pub const PAD: HistLabels = HistLabels {
        x_desc: "liveness score (higher = more live)",
        positive: "bona fide",
        negative: "attack, all types",
        counted: ("bona fide", "attack"),
        not_scored: "Not shown (rejected by the quality gate, no score)",
    };
    pub const MATCH: HistLabels = HistLabels {
        x_desc: "similarity (cosine of the face embeddings; higher = more alike)",
        positive: "genuine (same person)",
        negative: "impostor (different people)",
        counted: ("genuine", "impostor"),
        not_scored: "Not shown (no usable face on one side, no score)",
    };
}

/// A histogram of genuine and impostor similarities (each normalised to its own count) with
/// the threshold as a vertical line.
#[allow(clippy::too_many_arguments)]
pub fn similarity_histogram(
    genuine: &[f64],
    impostor: &[f64],
    not_scored: (usize, usize),
    threshold: f64,
    bins: usize,
    title: &str,
    path_png: &Path,
    path_svg: &Path,
) -> Result<(), EvalError> {
    if bins == 0 {
        return Err(EvalError::InvalidBins);
    }
    if !threshold.is_finite() {
        return Err(EvalError::InvalidThreshold(threshold));
    }
    ensure_font(path_png)?;
    let info = HistInfo {
        n_bona: genuine.len(),
        n_attack: impostor.len(),
        gated_bona: not_scored.0,
        gated_attack: not_scored.1,
        threshold,
        labels: &HistLabels::MATCH,
    };
    write_hist(genuine, impostor, bins, title, &info, path_png, path_svg)
}

fn write_hist(
    bona: &[f64],
    attack: &[f64],
    bins: usize,
    title: &str,
    info: &HistInfo,
    path_png: &Path,
    path_svg: &Path,
) -> Result<(), EvalError> {
    let hist = Hist::new(bona, attack, info.threshold, bins);
    write_png(path_png, HIST_SIZE, |root| {
        draw_hist(root, &hist, info, title)
    })?;
    {
        let root = SVGBackend::new(path_svg, HIST_SIZE).into_drawing_area();
        draw_hist(&root, &hist, info, title).map_err(|m| plot_err(path_svg, m))?;
        root.present().map_err(|e| plot_err(path_svg, e))?;
    }
    Ok(())
}

struct HistInfo {
    n_bona: usize,
    n_attack: usize,
    gated_bona: usize,
    gated_attack: usize,
    threshold: f64,
    labels: &'static HistLabels,
}

/// Equal-width bins over the score range (`[0, 1]` when every score and the
/// threshold lie in it), as fractions of each class.
struct Hist {
    lo: f64,
    width: f64,
    bona: Vec<f64>,
    attack: Vec<f64>,
}

impl Hist {
    fn new(bona: &[f64], attack: &[f64], threshold: f64, bins: usize) -> Self {
        let all = bona.iter().chain(attack).copied().chain([threshold]);
        let (min, max) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if min >= 0.0 && max <= 1.0 {
            (0.0, 1.0)
        } else if max > min {
            let pad = 0.02 * (max - min);
            (min - pad, max + pad)
        } else {
            (min - 0.5, max + 0.5)
        };
        let width = (hi - lo) / bins as f64;
        let fractions = |scores: &[f64]| {
            let mut counts = vec![0usize; bins];
            for s in scores {
                let i = ((s - lo) / width).floor();
                let i = if i.is_finite() && i > 0.0 {
                    (i as usize).min(bins - 1)
                } else {
                    0
                };
                counts[i] += 1;
            }
            let n = scores.len().max(1) as f64;
            counts
                .into_iter()
                .map(|c| c as f64 / n)
                .collect::<Vec<f64>>()
        };
        Self {
            lo,
            width,
            bona: fractions(bona),
            attack: fractions(attack),
        }
    }

    fn hi(&self) -> f64 {
        self.lo + self.width * self.bona.len() as f64
    }
}

fn draw_hist<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    hist: &Hist,
    info: &HistInfo,
    title: &str,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let h = root.dim_in_pixel().1;
    let (upper, lower) = root.split_vertically(h.saturating_sub(CAPTION_HEIGHT - 20));

    let y_max = hist
        .bona
        .iter()
        .chain(&hist.attack)
        .copied()
        .fold(0.0_f64, f64::max)
        .max(0.05)
        * 1.35;
    let mut chart = ChartBuilder::on(&upper)
        .caption(title, (FONT, 20))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(hist.lo..hist.hi(), 0.0..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(info.labels.x_desc)
        .y_desc("fraction of the class's scored samples")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .draw()
        .map_err(e)?;

    let bars = |fractions: &[f64], color: RGBColor| -> Vec<Rectangle<(f64, f64)>> {
        fractions
            .iter()
            .enumerate()
            .filter(|(_, f)| **f > 0.0)
            .flat_map(|(i, f)| {
                let x0 = hist.lo + hist.width * i as f64;
                let x1 = x0 + hist.width;
                [
                    Rectangle::new([(x0, 0.0), (x1, *f)], color.mix(0.45).filled()),
                    Rectangle::new([(x0, 0.0), (x1, *f)], color.stroke_width(1)),
                ]
            })
            .collect()
    };
    chart
        .draw_series(bars(&hist.bona, BONA_FIDE_COLOR))
        .map_err(e)?
        .label(format!(
            "{} (n = {} scored)",
            info.labels.positive, info.n_bona
        ))
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 6), (x + 16, y + 6)],
                BONA_FIDE_COLOR.mix(0.6).filled(),
            )
        });
    chart
        .draw_series(bars(&hist.attack, ATTACK_COLOR))
        .map_err(e)?
        .label(format!(
            "{} (n = {} scored)",
            info.labels.negative, info.n_attack
        ))
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 6), (x + 16, y + 6)],
                ATTACK_COLOR.mix(0.6).filled(),
            )
        });
    chart
        .draw_series(LineSeries::new(
            vec![(info.threshold, 0.0), (info.threshold, y_max)],
            BLACK.stroke_width(2),
        ))
        .map_err(e)?
        .label(format!(
            "threshold = {} (accept iff score >= threshold)",
            info.threshold
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 14))
        .draw()
        .map_err(e)?;

    lower
        .draw(&Text::new(
            format!(
                "{}: {} {}, {} {}.",
                info.labels.not_scored,
                info.gated_bona,
                info.labels.counted.0,
                info.gated_attack,
                info.labels.counted.1
            ),
            (20, 6),
            (FONT, 14),
        ))
        .map_err(e)?;
    Ok(())
}
