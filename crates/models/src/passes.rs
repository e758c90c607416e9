//! Load-time graph passes, each a named tract [`ModelTransform`]. [`apply_all`] is the sequence
//! every model goes through before tract's codegen; its result is what the plan cache stores
//! (bump [`crate::plan_cache::PASS_VERSION`] when it changes).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::transform::ModelTransform;

/// The passes before codegen: declutter, [`PreluToMax`], declutter again (it lets tract fuse the
/// new Max into the convolutions; docs/performance.md measures what skipping it costs).
pub fn apply_all(model: TypedModel, name: &str) -> TractResult<TypedModel> {
    let mut m = model.into_decluttered()?;
    let rewritten = PreluToMax.rewrite(&mut m)?;
    if rewritten > 0 {
        tracing::debug!(model = %name, rewritten, pass = %PreluToMax.name(), "graph pass applied");
    }
    m.into_decluttered()
}

/// tract-onnx expands PReLU into `Iff(0 > x, x * slope, x)`, and tract runs `Iff` without SIMD.
/// When every slope is ≤ 1, PReLU(x) = max(x, slope * x) exactly (x ≥ 0: x ≥ slope·x; x < 0:
/// slope·x ≥ x). With any slope above 1 (MediaPipe's face mesh and iris models have some: up to
/// 1.54), PReLU(x) = max(x, 0) + slope · min(x, 0), also exactly (x ≥ 0: x + slope·0; x < 0:
/// 0 + slope·x). Max, Min, Mul and Add are vectorised. Generic: any model, matched by structure,
/// constant finite slopes checked; anything else is left alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreluToMax;

impl ModelTransform for PreluToMax {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "prelu-to-max".into()
    }

    fn transform(&self, model: &mut TypedModel) -> TractResult<()> {
        self.rewrite(model).map(|_| ())
    }
}

impl PreluToMax {
    /// Apply the rewrite; returns the number of PReLU nodes rewritten.
    pub fn rewrite(&self, model: &mut TypedModel) -> TractResult<usize> {
        use tract_onnx::tract_core::ops::binary::TypedBinOp;
        use tract_onnx::tract_core::ops::logic::Iff;
        let mut count = 0;
        for id in model.eval_order()? {
            let node = &model.nodes[id];
            if node.op_as::<Iff>().is_none() || node.inputs.len() != 3 {
                continue;
            }
            let (cond, t, x) = (node.inputs[0], node.inputs[1], node.inputs[2]);
            // cond = 0 > x
            let cn = &model.nodes[cond.node];
            let is_gt = cn.op_as::<TypedBinOp>().is_some_and(|b| b.0.name() == "GT");
            if !is_gt || cn.inputs.len() != 2 || cn.inputs[1] != x {
                continue;
            }
            let zero_ok = const_all(model, cn.inputs[0], |z| z == 0.0)?;
            // t = x * slope (either order), slope constant and ≤ 1 everywhere
            let tn = &model.nodes[t.node];
            let is_mul = tn
                .op_as::<TypedBinOp>()
                .is_some_and(|b| b.0.name() == "Mul");
            if !zero_ok || !is_mul || tn.inputs.len() != 2 {
                continue;
            }
            let slope = if tn.inputs[0] == x {
                tn.inputs[1]
            } else if tn.inputs[1] == x {
                tn.inputs[0]
            } else {
                continue;
            };
            if !const_all(model, slope, f32::is_finite)? {
                continue;
            }
            let at_most_one = const_all(model, slope, |a| a <= 1.0)?;
            let name = format!("{}.prelu_max", node.name);
            let mut patch = TypedModelPatch::default();
            let px = patch.tap_model(model, x)?;
            use tract_onnx::tract_core::ops::math;
            let out = if at_most_one {
                let pt = patch.tap_model(model, t)?;
                patch.wire_node(name, math::max(), &[px, pt])?[0]
            } else {
                let rank = model.outlet_fact(x)?.rank();
                let zero = patch.add_const(
                    format!("{name}.zero"),
                    tensor0(0f32).broadcast_into_rank(rank)?,
                )?;
                let ps = patch.tap_model(model, slope)?;
                let pos = patch.wire_node(format!("{name}.pos"), math::max(), &[px, zero])?[0];
                let neg = patch.wire_node(format!("{name}.neg"), math::min(), &[px, zero])?[0];
                let scaled = patch.wire_node(format!("{name}.scaled"), math::mul(), &[neg, ps])?[0];
                patch.wire_node(name, math::add(), &[pos, scaled])?[0]
            };
            patch.shunt_outside(model, OutletId::new(id, 0), out)?;
            patch.apply(model)?;
            count += 1;
        }
        Ok(count)
    }
}

/// True when `outlet` is a constant f32 tensor whose every value satisfies `pred`.
fn const_all(
    model: &TypedModel,
    outlet: OutletId,
    pred: impl Fn(f32) -> bool,
) -> TractResult<bool> {
    Ok(model
        .outlet_fact(outlet)?
        .konst
        .as_ref()
        .and_then(|k| {
            let view = k.try_as_plain_ram().ok()?;
            view.as_slice::<f32>()
                .ok()
                .map(|s| s.iter().all(|v| pred(*v)))
        })
        .unwrap_or(false))
}
