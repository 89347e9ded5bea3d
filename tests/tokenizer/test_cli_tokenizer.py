"""`openk2 tokenize`, `chat-template` and `train-tokenizer` from the command line."""

import json
from pathlib import Path

from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.tokenizer import Tokenizer, default_tokenizer, default_tokenizer_path

_register_commands()
RUNNER = CliRunner()
TOK = default_tokenizer()


def test_tokenize_prints_ids_of_the_bundled_vocab() -> None:
    result = RUNNER.invoke(app, ["tokenize", "Hello <|im_end|>"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == TOK.encode("Hello <|im_end|>")
    plain = RUNNER.invoke(app, ["tokenize", "--no-special", "<|im_end|>"])
    assert TOK.im_end_id not in json.loads(plain.stdout)


def test_tokenize_pieces_and_explicit_tokenizer() -> None:
    result = RUNNER.invoke(app, ["tokenize", "--pieces", "--tokenizer",
                                 str(default_tokenizer_path()), "你 <think>"])
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert lines[-1] == f"{TOK.token_id('<think>')}\t'<think>'"
    assert lines[0].endswith("b'\\xe4'")


def test_tokenize_with_a_missing_tokenizer_fails_cleanly(tmp_path: Path) -> None:
    result = RUNNER.invoke(app, ["tokenize", "--tokenizer", str(tmp_path), "x"])
    assert result.exit_code == 1
    assert "is not a tokenizer: tiktoken.model is missing" in result.output


def test_chat_template_renders_messages_and_tools(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    (tmp_path / "m.json").write_text(json.dumps(messages))
    (tmp_path / "t.json").write_text(json.dumps(tools))
    result = RUNNER.invoke(app, ["chat-template", "--messages", str(tmp_path / "m.json"),
                                 "--tools", str(tmp_path / "t.json"), "--instant"])
    assert result.exit_code == 0
    assert result.stdout == (
        "<|im_system|>tool_declare<|im_middle|># Tools\n\n## functions\nnamespace functions {\n"
        "type f = (_: {}) => any;\n}\n<|im_end|><|im_user|>user<|im_middle|>Hi<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|><think></think>\n")


def test_chat_template_accepts_a_request_body_and_prints_ids(tmp_path: Path) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"},
                         {"role": "assistant", "reasoning_content": "r", "content": "a"}]}
    (tmp_path / "req.json").write_text(json.dumps(body))
    result = RUNNER.invoke(app, ["chat-template", "--messages", str(tmp_path / "req.json"),
                                 "--preserve-thinking", "--no-generation-prompt", "--ids"])
    assert result.exit_code == 0
    ids = json.loads(result.stdout)
    assert TOK.decode(ids) == ("<|im_user|>user<|im_middle|>Hi<|im_end|>"
                               "<|im_assistant|>assistant<|im_middle|><think>r</think>a<|im_end|>")


def test_chat_template_reports_bad_input(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('[{"role": "tool", "content": "x"}]')
    result = RUNNER.invoke(app, ["chat-template", "--messages", str(tmp_path / "bad.json")])
    assert result.exit_code == 1 and "tool_call_id" in result.output
    (tmp_path / "broken.json").write_text("{")
    result = RUNNER.invoke(app, ["chat-template", "--messages", str(tmp_path / "broken.json")])
    assert result.exit_code == 1 and "cannot read messages file" in result.output
    (tmp_path / "obj.json").write_text('{"x": 1}')
    result = RUNNER.invoke(app, ["chat-template", "--messages", str(tmp_path / "obj.json")])
    assert result.exit_code == 1 and "list of messages" in result.output


def test_train_tokenizer_writes_a_loadable_vocab(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    source = Path(json.__file__).read_text(encoding="utf-8")
    (corpus / "a.py").write_text(source * 3)
    (tmp_path / "b.txt").write_text("hello world, hello tokenizer. " * 200)
    out = tmp_path / "vocab"
    result = RUNNER.invoke(app, ["train-tokenizer", str(tmp_path / "b.txt"), "--corpus",
                                 str(corpus), "--vocab-size", "700", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "444 BPE ranks + 256 specials (vocab 700)" in result.stdout
    tok = Tokenizer.from_pretrained(out)
    assert tok.vocab_size == 700 and tok.im_end_id == 444 + 2


def test_train_tokenizer_errors(tmp_path: Path) -> None:
    result = RUNNER.invoke(app, ["train-tokenizer", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "give corpus files" in result.output
    result = RUNNER.invoke(app, ["train-tokenizer", str(tmp_path / "nope.txt"),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "does not exist" in result.output
    (tmp_path / "small.txt").write_text("abc")
    result = RUNNER.invoke(app, ["train-tokenizer", str(tmp_path / "small.txt"),
                                 "--vocab-size", "4000", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "only supports" in result.output
