# Trains small byte-level BPE tokenizers with Hugging Face `tokenizers` (the Rust library) in the three pre-tokenizer
# layouts that published checkpoints use, writes each tokenizer.json + tokenizer_config.json (with a chat template)
# and the ids, decodings and chat renderings that `tokenizers` / transformers produce, for
# test/hf_tokenizers.test.ts. Usage: python3 scripts/interop/make_hf_tokenizers.py TEXTS_JSON OUT_DIR
import json, os, sys
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

texts = json.load(open(sys.argv[1]))
out = sys.argv[2]
# Llama 3 and Qwen2 split words, numbers (Llama 3: runs of up to 3 digits; Qwen2: single digits), punctuation and
# newlines with one regex, case-insensitive contractions, then map bytes without a second regex split.
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
corpus = [t for t in texts if t] * 20 + [
    'The river Ost runs past Velmar, where 1,234 people eat plum cakes.',
    "It's what they'd said: we'll go at 10:45 — or won't we?",
] * 50
# A ChatML-style template using the jinja features real templates rely on: a default system message, loops,
# conditionals, string methods and the generation prompt.
CHATML = (
    "{%- if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
HEADERS = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content.strip() + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
styles = {
    'gpt2-style': dict(pre=pre_tokenizers.ByteLevel(add_prefix_space=False), norm=None,
                       specials=['<|endoftext|>'], bos=None, eos='<|endoftext|>', template=None),
    'llama3-style': dict(pre=pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), behavior='isolated'),
                                                      pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                         norm=None, specials=['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>',
                                              '<|end_header_id|>', '<|eot_id|>'],
                         bos='<|begin_of_text|>', eos='<|eot_id|>', template=HEADERS),
    'qwen2-style': dict(pre=pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2), behavior='isolated'),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                        norm=normalizers.NFC(), specials=['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
                        bos=None, eos='<|im_end|>', template=CHATML),
}
messages = [{'role': 'user', 'content': '  What river runs past Velmar?  '},
            {'role': 'assistant', 'content': 'The Ost.'},
            {'role': 'user', 'content': 'And its food?'}]
for name, s in styles.items():
    tok = Tokenizer(models.BPE())
    if s['norm'] is not None:
        tok.normalizer = s['norm']
    tok.pre_tokenizer = s['pre']
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, special_tokens=s['specials'],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if s['bos']:
        bos_id = tok.token_to_id(s['bos'])
        tok.post_processor = processors.TemplateProcessing(single=f"{s['bos']} $A", pair=f"{s['bos']} $A {s['bos']} $B",
                                                           special_tokens=[(s['bos'], bos_id)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=s['bos'], eos_token=s['eos'],
                                   chat_template=s['template'])
    fast.save_pretrained(folder)
    reloaded = PreTrainedTokenizerFast.from_pretrained(folder)
    ref = {
        'texts': texts,
        'ids': [reloaded(t)['input_ids'] for t in texts],
        'idsNoSpecial': [reloaded(t, add_special_tokens=False)['input_ids'] for t in texts],
        'decoded': [reloaded.decode(reloaded(t, add_special_tokens=False)['input_ids']) for t in texts],
        'messages': messages,
        'chat': reloaded.apply_chat_template(messages, tokenize=False) if s['template'] else None,
        'chatPrompt': reloaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) if s['template'] else None,
    }
    json.dump(ref, open(os.path.join(folder, 'reference.json'), 'w'), ensure_ascii=False)
    print(name, sorted(os.listdir(folder)), 'vocab', tok.get_vocab_size())
