//! Gradient checks of the fused CPU ops: outputs and gradients against candle's own ops, and against
//! finite differences. Tolerances: candle comparisons 1e-4 relative to the largest value (the two
//! sum in different orders); finite differences with a step of 1e-3, 2e-3 absolute + 2e-2 relative
//! (f32 rounding of the loss over that step; see `agrees` for kinks), and for whole networks a step
//! of 1e-2 with 2e-4 absolute.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{conv_block, max_pool2d, ConvBlock, MaxPool};

fn random(shape: &[usize], rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "{what}[{i}]: got {g}, want {w} (scale {scale})"
        );
    }
}

/// Σ f(inputs) · r in f64: a scalar loss whose gradient with respect to f's output is `r`.
fn weighted_sum(out: &Tensor, r: &[f32]) -> f64 {
    values(out)
        .iter()
        .zip(r)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum()
}

/// Whether `analytic` agrees with the finite differences around a point, given the loss there and
/// a step either side: the central difference, or either one-sided one. The functions checked are
/// piecewise linear in each input (ReLU, max) or smooth; where a step crosses a kink (a ReLU at
/// zero, a change of maximum) the central difference is off, but the side that crosses none is exact.
fn agrees(analytic: f64, at: f64, plus: f64, minus: f64, step: f64, abs_tol: f64) -> bool {
    let ok = |numeric: f64| (numeric - analytic).abs() <= abs_tol + 2e-2 * analytic.abs();
    ok((plus - minus) / (2.0 * step)) || ok((plus - at) / step) || ok((at - minus) / step)
}

/// Finite differences of `loss` in every element of `inputs[which]`, checked against `analytic`.
fn check_finite_differences(
    inputs: &[Vec<f32>],
    which: usize,
    analytic: &[f32],
    loss: &dyn Fn(&[Vec<f32>]) -> f64,
    what: &str,
) {
    let step = 1e-3f32;
    let at = loss(inputs);
    for i in 0..inputs[which].len() {
        let mut plus = inputs.to_vec();
        plus[which][i] += step;
        let mut minus = inputs.to_vec();
        minus[which][i] -= step;
        let (p, m) = (loss(&plus), loss(&minus));
        let a = f64::from(analytic[i]);
        assert!(
            agrees(a, at, p, m, f64::from(step), 2e-3),
            "{what}[{i}]: analytic {a}, central difference {}",
            (p - m) / (2.0 * f64::from(step))
        );
    }
}

struct Case {
    n: usize,
    c: usize,
    hw: usize,
    filters: usize,
    k: usize,
    block: ConvBlock,
}

const CASES: [Case; 6] = [
    // LeNet's first layer: valid padding, ReLU, 2×2 pooling.
    Case {
        n: 3,
        c: 1,
        hw: 12,
        filters: 4,
        k: 5,
        block: ConvBlock {
            stride: 1,
            padding: 0,
            relu: true,
            max_pool: Some(MaxPool::tiling(2)),
        },
    },
    // 'same' padding, ReLU, no pooling.
    Case {
        n: 2,
        c: 3,
        hw: 7,
        filters: 5,
        k: 3,
        block: ConvBlock {
            stride: 1,
            padding: 1,
            relu: true,
            max_pool: None,
        },
    },
    // Stride 2 with padding, no activation.
    Case {
        n: 2,
        c: 2,
        hw: 9,
        filters: 3,
        k: 3,
        block: ConvBlock {
            stride: 2,
            padding: 1,
            relu: false,
            max_pool: None,
        },
    },
    // Stride 3, pooling over an odd map (floor mode drops the last row and column), no activation.
    Case {
        n: 2,
        c: 2,
        hw: 11,
        filters: 3,
        k: 3,
        block: ConvBlock {
            stride: 3,
            padding: 2,
            relu: false,
            max_pool: Some(MaxPool::tiling(2)),
        },
    },
    // Kernel larger than the stride with 'same' padding for 5×5, pooling by 3.
    Case {
        n: 2,
        c: 2,
        hw: 9,
        filters: 4,
        k: 5,
        block: ConvBlock {
            stride: 1,
            padding: 2,
            relu: true,
            max_pool: Some(MaxPool::tiling(3)),
        },
    },
    // A ResNet stem: stride 2, ReLU, then overlapping 3×3 windows with stride 2 and padding 1.
    Case {
        n: 2,
        c: 3,
        hw: 15,
        filters: 4,
        k: 7,
        block: ConvBlock {
            stride: 2,
            padding: 3,
            relu: true,
            max_pool: Some(MaxPool {
                size: 3,
                stride: 2,
                padding: 1,
            }),
        },
    },
];

/// Candle's conv2d + bias (+ ReLU) (+ max-pool), the reference forward.
fn candle_block(x: &Tensor, w: &Tensor, b: &Tensor, block: ConvBlock) -> Tensor {
    let z = x.conv2d(w, block.padding, block.stride, 1, 1).unwrap();
    let z = z
        .broadcast_add(&b.reshape((1, b.dim(0).unwrap(), 1, 1)).unwrap())
        .unwrap();
    let z = if block.relu { z.relu().unwrap() } else { z };
    match block.max_pool {
        // Zero padding stands in for −∞ only after a ReLU (every value ≥ 0), which the cases keep to.
        Some(MaxPool {
            size,
            stride,
            padding,
        }) if padding > 0 => {
            assert!(block.relu);
            z.pad_with_zeros(3, padding, padding)
                .unwrap()
                .pad_with_zeros(2, padding, padding)
                .unwrap()
                .max_pool2d_with_stride(size, stride)
                .unwrap()
        }
        Some(pool) => z.max_pool2d_with_stride(pool.size, pool.stride).unwrap(),
        None => z,
    }
}

#[test]
fn conv_block_matches_candle_and_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (ci, case) in CASES.iter().enumerate() {
        let (xs, ws) = (
            [case.n, case.c, case.hw, case.hw],
            [case.filters, case.c, case.k, case.k],
        );
        let inputs = vec![
            random(&xs, &mut rng),
            random(&ws, &mut rng),
            random(&[case.filters], &mut rng),
        ];
        let x = Var::from_vec(inputs[0].clone(), &xs[..], &Device::Cpu).unwrap();
        let w = Var::from_vec(inputs[1].clone(), &ws[..], &Device::Cpu).unwrap();
        let b = Var::from_vec(inputs[2].clone(), case.filters, &Device::Cpu).unwrap();

        let ours = conv_block(&x, &w, &b, case.block).unwrap();
        let reference = candle_block(&x, &w, &b, case.block);
        assert_eq!(ours.dims(), reference.dims(), "case {ci}: shape");
        assert_close(
            &values(&ours),
            &values(&reference),
            &format!("case {ci}: output"),
        );
        // Without gradients (plain tensors, nothing kept for a backward pass) the same values.
        let plain = |v: &Var| v.as_tensor().detach();
        assert_eq!(
            values(&conv_block(&plain(&x), &plain(&w), &plain(&b), case.block).unwrap()),
            values(&ours),
            "case {ci}: untracked forward"
        );

        let r = random(ours.dims(), &mut rng);
        let r_t = Tensor::from_vec(r.clone(), ours.dims(), &Device::Cpu).unwrap();
        let grads = (&ours * &r_t)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let analytic: Vec<Vec<f32>> = [&x, &w, &b]
            .iter()
            .map(|v| values(grads.get(v).expect("a gradient")))
            .collect();

        if case.block.max_pool.is_none() {
            // Candle's conv2d backward is a reference only without pooling (see `pool`'s docs).
            let ref_grads = (&reference * &r_t)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (name, (v, a)) in ["input", "weight", "bias"]
                .iter()
                .zip([&x, &w, &b].iter().zip(&analytic))
            {
                assert_close(
                    a,
                    &values(ref_grads.get(v).unwrap()),
                    &format!("case {ci}: {name} gradient vs candle"),
                );
            }
        }
        let loss = |inp: &[Vec<f32>]| {
            let t =
                |v: &Vec<f32>, s: &[usize]| Tensor::from_vec(v.clone(), s, &Device::Cpu).unwrap();
            let out = conv_block(
                &t(&inp[0], &xs),
                &t(&inp[1], &ws),
                &t(&inp[2], &[case.filters]),
                case.block,
            )
            .unwrap();
            weighted_sum(&out, &r)
        };
        for (which, name) in ["input", "weight", "bias"].iter().enumerate() {
            check_finite_differences(
                &inputs,
                which,
                &analytic[which],
                &loss,
                &format!("case {ci}: {name} gradient"),
            );
        }
    }
}

#[test]
fn an_input_that_needs_no_gradient_gets_none() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = Tensor::from_vec(random(&[2, 1, 8, 8], &mut rng), (2, 1, 8, 8), &Device::Cpu).unwrap();
    let w = Var::from_vec(random(&[3, 1, 3, 3], &mut rng), (3, 1, 3, 3), &Device::Cpu).unwrap();
    let b = Var::from_vec(random(&[3], &mut rng), 3, &Device::Cpu).unwrap();
    let block = ConvBlock {
        stride: 1,
        padding: 1,
        relu: true,
        max_pool: Some(MaxPool::tiling(2)),
    };
    let grads = conv_block(&x, &w, &b, block)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(
        grads.get(&x).is_none(),
        "the images are constants: no input gradient is computed"
    );
    assert!(grads.get(&w).is_some() && grads.get(&b).is_some());
}

#[test]
fn max_pool_gives_ties_to_the_first_maximum_like_pytorch() {
    // One 4×4 plane; windows [1 3 / 3 2], [5 5 / 5 5], [0 -1 / -2 0], [7 1 / 2 9].
    // PyTorch 2.15: x.requires_grad_(); F.max_pool2d(x, 2).sum().backward(); x.grad gives 1 at the
    // first maximum of each window in row-major order, 0 elsewhere.
    let plane: [f32; 16] = [
        1.0, 3.0, 5.0, 5.0, 3.0, 2.0, 5.0, 5.0, 0.0, -1.0, 7.0, 1.0, -2.0, 0.0, 2.0, 9.0,
    ];
    let want = [
        0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0,
    ];
    let x = Var::from_vec(plane.to_vec(), (1, 1, 4, 4), &Device::Cpu).unwrap();
    let out = max_pool2d(&x, 2).unwrap();
    assert_eq!(values(&out), vec![3.0, 5.0, 0.0, 9.0]);
    let grads = out.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(grads.get(&x).unwrap()), want.to_vec());

    // The same through the fused block: a 1×1 convolution with weight 1 and bias 0 is the identity.
    let w = Var::from_vec(vec![1.0f32], (1, 1, 1, 1), &Device::Cpu).unwrap();
    let b = Var::from_vec(vec![0.0f32], 1, &Device::Cpu).unwrap();
    let block = ConvBlock {
        stride: 1,
        padding: 0,
        relu: false,
        max_pool: Some(MaxPool::tiling(2)),
    };
    let out = conv_block(&x, &w, &b, block).unwrap();
    let grads = out.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(grads.get(&x).unwrap()), want.to_vec());
}

#[test]
fn candle_max_pool_backward_scales_a_unique_maximum_by_a_quarter() {
    // Why the network uses its own max-pool op on the CPU: candle 0.11 divides the gradient by the
    // window's size for a unique maximum (finite differences say the gradient there is 1).
    let x = Var::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    let grads = x
        .max_pool2d(2)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(values(grads.get(&x).unwrap()), vec![0.0, 0.0, 0.0, 0.25]);
}

#[test]
fn max_pool_matches_finite_differences_on_odd_sizes() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let shape = [2, 3, 7, 5];
    let inputs = vec![random(&shape, &mut rng)];
    let x = Var::from_vec(inputs[0].clone(), &shape[..], &Device::Cpu).unwrap();
    let out = max_pool2d(&x, 2).unwrap();
    assert_eq!(out.dims(), &[2, 3, 3, 2]);
    assert_eq!(
        values(&out),
        values(&x.max_pool2d(2).unwrap()),
        "forward as candle's"
    );
    let r = random(out.dims(), &mut rng);
    let r_t = Tensor::from_vec(r.clone(), out.dims(), &Device::Cpu).unwrap();
    let grads = (&out * &r_t)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let analytic = values(grads.get(&x).unwrap());
    let loss = |inp: &[Vec<f32>]| {
        let t = Tensor::from_vec(inp[0].clone(), &shape[..], &Device::Cpu).unwrap();
        weighted_sum(&max_pool2d(&t, 2).unwrap(), &r)
    };
    check_finite_differences(&inputs, 0, &analytic, &loss, "max-pool input gradient");
}

/// Every layer kind in one network (the fused blocks and candle's ops around them), in training
/// mode (batch statistics, a seeded dropout mask) and in evaluation mode: the gradient of the
/// cross-entropy loss with respect to every trainable tensor, sampled, against central differences.
#[test]
fn networks_of_every_layer_kind_match_finite_differences() {
    use crate::model::{Activation, Layer, Network, Padding};
    let act = |function| Layer::Activation { function };
    let conv = |filters, kernel, stride, padding| Layer::Conv2d {
        filters,
        kernel,
        stride,
        padding,
    };
    let every_kind = vec![
        conv(4, 3, 1, Padding::Same),
        Layer::BatchNorm,
        act(Activation::Relu),
        Layer::MaxPool2d { size: 2 },
        conv(3, 3, 1, Padding::Same),
        act(Activation::Tanh),
        Layer::AvgPool2d { size: 2 },
        Layer::Flatten,
        Layer::Dense { units: 6 },
        act(Activation::Gelu),
        Layer::Dropout { rate: 0.25 },
        Layer::Dense { units: 5 },
        act(Activation::Sigmoid),
        Layer::Dense { units: 4 },
        act(Activation::Silu),
    ];
    // Strides are checked against candle in `networks_match_candle_s_own_ops`: a bias step of 1e-2
    // moves many ReLU inputs across zero at once, which no finite difference survives.
    let device = Device::Cpu;
    for (si, (layers, train)) in [(&every_kind, true), (&every_kind, false)]
        .into_iter()
        .enumerate()
    {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let net = Network::new(&[2, 8, 8], layers, 3, &mut rng, &device).unwrap();
        let x = Tensor::from_vec(random(&[3, 2, 8, 8], &mut rng), (3, 2, 8, 8), &device).unwrap();
        let y = Tensor::new(&[0u32, 2, 1], &device).unwrap();
        let loss_of = |net: &Network| {
            let mut dropout_rng = ChaCha8Rng::seed_from_u64(99);
            candle_nn::loss::cross_entropy(
                &net.forward(&x, train, Some(&mut dropout_rng)).unwrap(),
                &y,
            )
            .unwrap()
        };
        let grads = loss_of(&net).backward().unwrap();
        // A larger step than the ops' checks: these gradients are small after the squashing layers,
        // and f32 rounding of the loss over the step must stay well below them.
        let step = 1e-2f32;
        for (vi, var) in net.trainable_vars().iter().enumerate() {
            let analytic = values(
                grads
                    .get(var)
                    .unwrap_or_else(|| panic!("stack {si}: var {vi} has no gradient")),
            );
            let base = values(var.as_tensor());
            let set = |i: usize, delta: f32| {
                let mut v = base.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.dims(), &device).unwrap())
                    .unwrap();
                f64::from(loss_of(&net).to_scalar::<f32>().unwrap())
            };
            let at = f64::from(loss_of(&net).to_scalar::<f32>().unwrap());
            for i in (0..base.len()).step_by((base.len() / 6).max(1)) {
                let (plus, minus) = (set(i, step), set(i, -step));
                let a = f64::from(analytic[i]);
                let central = (plus - minus) / (2.0 * f64::from(step));
                assert!(agrees(a, at, plus, minus, f64::from(step), 2e-4), "stack {si} (train {train}), var {vi}[{i}]: analytic {a}, central difference {central}");
            }
            var.set(&Tensor::from_vec(base, var.dims(), &device).unwrap())
                .unwrap();
        }
    }
}

/// Whole networks, fused against candle's own ops (max-pooling there by `max` reduction, see
/// `pool`) from the same seed: logits, and the gradient of every trainable tensor.
#[test]
fn networks_match_candle_s_own_ops() {
    use crate::model::{default_cnn_layers, Activation, Layer, Network, Padding};
    let act = |function| Layer::Activation { function };
    let conv = |filters, kernel, stride, padding| Layer::Conv2d {
        filters,
        kernel,
        stride,
        padding,
    };
    let strided = vec![
        conv(3, 3, 2, Padding::Same),
        act(Activation::Relu),
        conv(2, 2, 1, Padding::Valid),
        Layer::Flatten,
    ];
    let avg_pool: Vec<Layer> = default_cnn_layers()
        .into_iter()
        .map(|l| {
            if let Layer::MaxPool2d { size } = l {
                Layer::AvgPool2d { size }
            } else {
                l
            }
        })
        .collect();
    let with_bn = vec![
        conv(4, 3, 1, Padding::Same),
        Layer::BatchNorm,
        act(Activation::Relu),
        conv(3, 5, 1, Padding::Same),
        act(Activation::Relu),
        Layer::Flatten,
    ];
    let device = Device::Cpu;
    for (si, layers) in [strided, default_cnn_layers(), avg_pool, with_bn]
        .iter()
        .enumerate()
    {
        let build = |fused: bool| {
            let mut rng = ChaCha8Rng::seed_from_u64(21);
            if fused {
                Network::new(&[2, 8, 8], layers, 3, &mut rng, &device)
            } else {
                Network::with_candle_ops(&[2, 8, 8], layers, 3, &mut rng, &device)
            }
            .unwrap()
        };
        let (fused, reference) = (build(true), build(false));
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x = Tensor::from_vec(random(&[5, 2, 8, 8], &mut rng), (5, 2, 8, 8), &device).unwrap();
        let y = Tensor::new(&[0u32, 2, 1, 1, 0], &device).unwrap();
        let run = |net: &Network| {
            let logits = net.forward(&x, true, None).unwrap();
            let grads = candle_nn::loss::cross_entropy(&logits, &y)
                .unwrap()
                .backward()
                .unwrap();
            let g: Vec<Vec<f32>> = net
                .trainable_vars()
                .iter()
                .map(|v| values(grads.get(v).unwrap()))
                .collect();
            (values(&logits), g)
        };
        let ((logits_a, grads_a), (logits_b, grads_b)) = (run(&fused), run(&reference));
        assert_close(&logits_a, &logits_b, &format!("stack {si}: logits"));
        for (vi, (a, b)) in grads_a.iter().zip(&grads_b).enumerate() {
            assert_close(a, b, &format!("stack {si}: gradient of var {vi}"));
        }
    }
}
