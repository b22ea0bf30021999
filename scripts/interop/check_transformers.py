# Checks instructkit's files against Hugging Face transformers, both ways:
#  1. loads the checkpoints and tokenizer that export-ours.mjs wrote (IN_DIR) with transformers and compares logits,
#     reward scores, token ids and the chat template rendering with ours;
#  2. writes small checkpoints with transformers' own save_pretrained (sharded, bf16, tied/untied, GQA, biases) and
#     their logits into OUT_DIR/hf-written, for test/hf_written.test.ts to load with instructkit.
# Usage: python3 scripts/interop/check_transformers.py IN_DIR OUT_DIR   (needs torch and transformers)
import json, os, sys, traceback
import torch
import transformers
from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, GPT2Config,
                          GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification, Qwen2Config,
                          Qwen2ForCausalLM)

torch.set_grad_enabled(False)
IN, OUT = sys.argv[1], sys.argv[2]
print('transformers', transformers.__version__, 'torch', torch.__version__)
failures = []


def check(name, fn):
    try:
        ok, detail = fn()
    except Exception:
        ok, detail = False, traceback.format_exc(limit=3)
    print(('PASS ' if ok else 'FAIL ') + name + ': ' + detail)
    if not ok:
        failures.append(name)


def max_rel(a, b):
    a, b = torch.tensor(a).flatten(), torch.tensor(b).flatten()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


expected = json.load(open(os.path.join(IN, 'expected.json')))
ids = torch.tensor([expected['ids']])

for name, ours in expected['models'].items():
    def lm(name=name, ours=ours):
        model, info = AutoModelForCausalLM.from_pretrained(os.path.join(IN, name), output_loading_info=True,
                                                           dtype=torch.float32, attn_implementation='eager')
        problems = {k: v for k, v in info.items() if v}
        err = max_rel(model(torch.tensor([ours['ids']])).logits, ours['logits'])
        return err < 1e-4 and not problems, f'{type(model).__name__} max rel err {err:.2e}, loading info {problems}'
    check(f'ours → transformers: {name}', lm)

for name, ours in expected['scalars'].items():
    def rm(name=name, ours=ours):
        model, info = AutoModelForSequenceClassification.from_pretrained(os.path.join(IN, name), output_loading_info=True,
                                                                         attn_implementation='eager')
        hf = model(ids).logits[0, 0].item()
        # Sequence-classification heads have no bias: transformers drops ours (a constant shift of every score).
        err = abs(hf - (ours['score'] - ours['bias']))
        return err < 1e-4 * max(1, abs(hf)), f'{type(model).__name__} score {hf:.6f} vs ours {ours["score"]:.6f} (bias {ours["bias"]}), loading info {info}'
    check(f'ours → transformers: {name}', rm)

tok_expected = expected['tokenizer']


def tokenizer():
    tok = AutoTokenizer.from_pretrained(os.path.join(IN, 'tokenizer'))
    got = [tok(t)['input_ids'] for t in tok_expected['texts']]
    same = got == tok_expected['ids']
    chat = tok.apply_chat_template(tok_expected['messages'], tokenize=False)
    roundtrip = all(tok.decode(i, skip_special_tokens=True) == t for i, t in zip(got, tok_expected['texts']))
    return same and chat == tok_expected['chat'] and roundtrip, (
        f'{type(tok).__name__} ids equal {same} (ours {tok_expected["ids"]}, hf {got}); chat equal {chat == tok_expected["chat"]} '
        f'(hf {chat!r} ours {tok_expected["chat"]!r}); decode round trip {roundtrip}')


check('ours → transformers: tokenizer', tokenizer)


def perturbed(model, seed):
    # Default init leaves near-uniform logits; larger random weights make a comparison that can fail.
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(torch.randn(p.shape, generator=g) * 0.15)
    return model.eval()


written = [
    ('gpt2', lambda: GPT2LMHeadModel(GPT2Config(vocab_size=96, n_positions=64, n_embd=32, n_layer=2, n_head=4)), {}, None),
    ('llama-gqa-sharded', lambda: LlamaForCausalLM(LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rope_theta=500000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=False)), {'max_shard_size': '20KB'}, None),
    ('qwen2-tied-bf16', lambda: Qwen2ForCausalLM(Qwen2Config(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, max_position_embeddings=64, tie_word_embeddings=True)), {}, torch.bfloat16),
    # Llama 3.x frequency scaling; positions past original/high_freq_factor make every band matter.
    ('llama3-rope-scaling', lambda: LlamaForCausalLM(LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256, tie_word_embeddings=True,
        rope_parameters={'rope_type': 'llama3', 'rope_theta': 500000.0, 'factor': 8.0, 'low_freq_factor': 1.0,
                         'high_freq_factor': 4.0, 'original_max_position_embeddings': 16})), {}, None),
    ('llama-linear-rope', lambda: LlamaForCausalLM(LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64,
        rope_parameters={'rope_type': 'linear', 'rope_theta': 10000.0, 'factor': 2.0})), {}, None),
    ('llama-rm', lambda: LlamaForSequenceClassification(LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, num_labels=1, pad_token_id=0)), {}, None),
]
os.makedirs(os.path.join(OUT, 'hf-written'), exist_ok=True)
for i, (name, make, save_opts, dtype) in enumerate(written):
    def write(name=name, make=make, save_opts=save_opts, dtype=dtype, seed=i):
        torch.manual_seed(seed)
        model = perturbed(make(), seed)
        folder = os.path.join(OUT, 'hf-written', name)
        (model.to(dtype) if dtype is not None else model).save_pretrained(folder, **save_opts)
        # The reference is what transformers computes from the files, loaded in f32.
        auto = AutoModelForSequenceClassification if 'ForSequenceClassification' in type(model).__name__ else AutoModelForCausalLM
        loaded = auto.from_pretrained(folder, dtype=torch.float32, attn_implementation='eager').eval()
        # 48 positions, so that RoPE scaling (which only changes slow rotations) shows in the logits.
        seq = torch.randint(0, 96, (1, 48), generator=torch.Generator().manual_seed(5))
        out = loaded(seq).logits
        drift = max_rel(model.float()(seq).logits, out.tolist())
        json.dump({'ids': seq[0].tolist(), 'output': out.flatten().tolist(), 'shape': list(out.shape)},
                  open(os.path.join(folder, 'reference.json'), 'w'))
        return True, f'{sorted(os.listdir(folder))}; in-memory vs reloaded logits differ by {drift:.2e} (relative)'
    check(f'transformers writes: {name}', write)

print('FAILURES:', failures if failures else 'none')
