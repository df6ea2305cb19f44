// Package dlm is DAF's reference diffusion language model: a small
// masked (absorbing-state) discrete diffusion model over bytes, written in
// pure Go, with TALoRA banks — one LoRA bank per timestep group — that the
// federation trains and exchanges.
//
// # The model
//
// Text is a sequence of SeqLen bytes. The forward process masks each byte
// independently with probability m(t), t ∈ [0,1000], from schedule.Cosine:
// nothing is masked at t = 0, everything at t = 1000; the fine group
// [0,300) sees mask rates below 0.2, the domain group 0.2–0.8, the coarse
// group above 0.8.
// The denoiser is a bidirectional pre-norm transformer: embeddings of the
// 256 byte values plus the mask token, of the byte before and the byte after
// (a width-3 "token shift" that hands the first block the adjacent bytes,
// which a model this small otherwise learns to find only after many
// thousands of steps), learned positions, and a learned embedding of t
// (20 buckets of 50) are added; Layers blocks of multi-head
// self-attention (no causal mask) and a ReLU MLP follow; a final layer norm
// and a linear head predict the clean byte at every masked position. The
// loss is the cross-entropy on masked positions (nats per masked byte);
// Evaluate also reports the discrete-time ELBO,
// Σ_t (m(t) − m(t−1))/m(t) · E[Σ CE]/L, a bound on the negative
// log-likelihood per byte, and its exp, a perplexity bound. Sample runs the
// reverse process: start fully masked and reveal bytes step by step.
//
// # TALoRA banks
//
// Every bank holds LoRA factors (rank r, scale α/r) on the q, k, v and o
// projections and on the MLP's up and down projections of every block, and
// on the output head — PEFT names such as
// base_model.model.layers.0.attn.q_proj.lora_A.weight,
// base_model.model.layers.1.mlp.down.lora_B.weight and
// base_model.model.head.lora_A.weight (A is r×in, B is out×r); 8 448
// values per group at the default shape. What separates one text domain
// from another at the byte level (which bytes follow which, how often) is
// stored mostly in the MLPs and the head; with attention-only banks the
// local arm's held-out loss moved by 0.02 nats in 8 rounds, with these
// modules by 0.03 at the same learning rate and compute (table below).
// The banks travel as an *adapter.Update with one group per timestep range
// (coarse [700,1000), domain [300,700), fine [0,300) by default). A training
// sequence's t picks its group's bank, and only that bank receives the
// gradient; the base is frozen, so its weight gradients are never computed.
// The groups see different problems: at fine times a byte is predicted
// from almost all its context, at coarse times from almost none, which is
// why their banks learn different things and why the DAF engine aggregates
// them with different strategies. Train uses AdamW with optional gradient
// clipping per bank and reports each group's loss before and after on a fixed
// probe set as Meta.Quality (perplexities), which the quality-weighted
// strategy reads. NewBanks initialises as PEFT does (A kaiming-uniform,
// B = 0), so fresh banks leave the base unchanged. Each Train call starts a
// fresh AdamW (banks carry no optimiser state between rounds), so
// DefaultTrainConfig warms the rate up over 2 steps and anneals it to 0 by
// the round's last step; TrainConfig.LRRatioB gives B its own rate (LoRA+),
// off by default because it measured worse here.
//
// Trainer wraps Train and Evaluate for a node (`daf node --train-data`).
//
// # Speed and determinism
//
// Forward and backward passes are hand-written over float32 (gonum's BLAS
// for the matrix products) and run one sequence per core. Gradients are
// summed per fixed chunk of a batch and the chunks added in order, so a seed
// gives bit-identical results on any number of cores. BenchmarkTrainStep
// reports training bytes (tokens) per second.
//
// # The shipped base and why it has this size
//
// base.safetensors is embedded in the binary (DefaultBase), so neither the
// demo nor a node pretrains at start. Its shape — SeqLen 64, d 64, 4 heads,
// 2 layers, MLP 128, ~139 k weights, 0.56 MB in F32, banks of rank 4 with
// α = 8 (8 448 values per group) — is set by the demo's budget: 5 arms × 3
// seeds × 5 nodes × ~8 rounds must train inside 5 minutes on 2 cores,
// which leaves each node-round about 0.3 s of CPU (~100 sequences). At that
// budget a wider or deeper model would see too few sequences for its banks
// to move. 64 bytes of context is enough for Go source lines and English
// sentences. Rank 8 was tried and adapted no better than rank 4.
//
// Regenerate it with
//
//	go run ./cmd/daf pretrain --out dlm/base.safetensors
//
// It trains with DefaultPretrainConfig (2000 steps of 16 sequences, about
// 3–4 minutes on two idle cores, ~16 minutes on the loaded machine it was
// made on), deterministically for its seed — bit for bit the same file from
// the same Go installation (the shipped one came from go1.26.8's sources),
// on any number of cores — on PretrainShards: the interleaved training
// parts of the Go source of ten standard-library packages (fmt, strings,
// text/template, go/parser, bufio, net/url, archive/zip, flag,
// html/template, strconv), none of which is a node's domain in the demo.
// It took 109 s on the two cores here and reaches 3.48 / 2.95 / 2.23 nats
// per masked byte (coarse / domain / fine) on those packages' held-out
// text, an ELBO of 2.76 nats per byte (perplexity bound 15.8).
//
// Why the nodes' domains are left out: a federation's sites hold data its
// public base never saw. A first base pretrained on the nodes' own shards
// left the banks almost nothing to learn (local training gained 0.02–0.03
// nats in 8 rounds), so no comparison between federation strategies could
// show anything. Held-out personal loss (nats per masked byte, groups
// weighted by their share of the time axis; 24 sequences per group, one
// evaluation seed) of local-only training with the shipped base, 8 rounds
// of 12 steps × 8 sequences, default shards of a 5-node corpus
// (TestMeasureLocalRounds with DLM_MEASURE=1 DLM_NODES=5 prints it):
//
//	shard        r0    r1    r2    r3    r4    r5    r6    r7    r8   gain
//	opticks     2.785 2.753 2.740 2.721 2.716 2.709 2.700 2.693 2.690  0.095
//	net/http    3.134 3.132 3.128 3.119 3.114 3.114 3.122 3.110 3.121  0.013
//	crypto/tls  2.913 2.906 2.897 2.891 2.886 2.886 2.882 2.884 2.890  0.023
//	go/types    2.809 2.805 2.805 2.807 2.807 2.806 2.805 2.810 2.806  0.003
//	runtime     3.721 3.688 3.629 3.583 3.587 3.560 3.518 3.530 3.506  0.214
//
// (mean gain 0.070; with the earlier base, pretrained on these shards, it
// was 0.030, and 0.020 with attention-only banks at a constant LR.) The
// MLP and head factors carry most of the gain; the in-round warm-up and
// annealing make the curves steadier. Learning rates of 1e-2 and 3e-2 and
// LoRA+ ratios of 8–16 made the Go shards worse (≈3 sequences per bank per
// step: the gradient is mostly noise). Evaluate draws the same windows,
// times and masks for every model given one seed, so differences between
// arms are paired and not drowned by sampling noise.
package dlm
