// RUN: kiln-opt %s --kiln-autodiff --kiln-optimizer --canonicalize --cse | FileCheck %s --check-prefix=SGD
// RUN: kiln-opt %s --kiln-autodiff --kiln-optimizer="optimizer=adamw lr=0.001 weight-decay=0.01 clip-norm=1.0 schedule=cosine warmup=10 total-steps=100" --canonicalize --cse | FileCheck %s --check-prefix=ADAMW

// The model file's optimizer (SGD, momentum 0.9, lr 0.1): the step counter
// and one momentum buffer per parameter are explicit state; the update is
// buf = 0.9 buf + g; w = w - lr buf. The learning rate is the hyper-parameter
// argument `lr` (f64, as torch.optim computes it; 0.1 as its initializer),
// cast once to the parameters' type.

// SGD-LABEL: func.func @m_train_step
// SGD-SAME: %[[W:[a-z0-9]+]]: tensor<3xf32> {kiln.init = #kiln.init<zeros>, kiln.name = "w", kiln.role = "param"}
// SGD-SAME: %[[STEP:[a-z0-9]+]]: tensor<i64> {kiln.name = "step", kiln.role = "state"}
// SGD-SAME: %[[BUF:[a-z0-9]+]]: tensor<3xf32> {kiln.name = "w.momentum_buffer", kiln.role = "state"}
// SGD-SAME: %[[LR64:[a-z0-9]+]]: tensor<f64> {kiln.init = #kiln.init<constant(value = 1.000000e-01)>, kiln.name = "lr", kiln.role = "hyper"}
// SGD-SAME: %[[X:[a-z0-9]+]]: tensor<2x3xf32> {kiln.name = "x", kiln.role = "input"}
// SGD-SAME: -> (tensor<f32> {kiln.name = "loss", kiln.role = "loss"}, tensor<3xf32> {kiln.name = "w", kiln.role = "param"}, tensor<i64> {kiln.name = "step", kiln.role = "state"}, tensor<3xf32> {kiln.name = "w.momentum_buffer", kiln.role = "state"})
// SGD-DAG: %[[MU:.+]] = kiln.constant dense<0.899999976> : tensor<f32>
// SGD-DAG: %[[ONE:.+]] = kiln.constant dense<1> : tensor<i64>
// SGD: %[[G:.+]] = kiln.reduce_sum %{{.+}} [0] : (tensor<2x3xf32>) -> tensor<3xf32>
// SGD: %[[NEXT:.+]] = kiln.add %[[STEP]], %[[ONE]]
// SGD: %[[LR:.+]] = kiln.cast %[[LR64]] : tensor<f64> to f32
// SGD: %[[DECAYED:.+]] = kiln.mul %[[MU]], %[[BUF]]
// SGD: %[[NEWBUF:.+]] = kiln.add %[[DECAYED]], %[[G]]
// SGD: %[[DELTA:.+]] = kiln.mul %[[LR]], %[[NEWBUF]]
// SGD: %[[NEWW:.+]] = kiln.sub %[[W]], %[[DELTA]]
// SGD: return %{{.+}}, %[[NEWW]], %[[NEXT]], %[[NEWBUF]]

// Options override the model file: AdamW with two moments per parameter,
// bias correction by pow(beta, t), decoupled weight decay, clipping by the
// global gradient norm and a cosine schedule with warm-up.

// ADAMW-LABEL: func.func @m_train_step
// ADAMW-SAME: kiln.name = "w.exp_avg", kiln.role = "state"
// ADAMW-SAME: kiln.name = "w.exp_avg_sq", kiln.role = "state"
// ADAMW: %[[T:.+]] = kiln.cast %{{.+}} : tensor<i64> to f64
// ADAMW: kiln.cos
// ADAMW: %[[NORM:.+]] = kiln.sqrt %{{.+}} : tensor<f32>
// ADAMW: kiln.add %[[NORM]]
// ADAMW: kiln.pow %{{.+}}, %[[T]]
// ADAMW: kiln.pow %{{.+}}, %[[T]]
// ADAMW: return
func.func @m(%x: tensor<2x3xf32> {kiln.name = "x"}) -> (tensor<f32> {kiln.name = "loss", kiln.role = "loss"}) attributes {kiln.model, kiln.optimizer = {kind = "sgd", lr = 1.0e-01 : f64, momentum = 9.0e-01 : f64}} {
  %w = kiln.param "w" : tensor<3xf32> init #kiln.init<zeros>
  %0 = kiln.mul %x, %w : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = kiln.reduce_sum %0 [] : (tensor<2x3xf32>) -> tensor<f32>
  return %1 : tensor<f32>
}
