"""Rules carry self-tests checked at load; a broken rule is rejected."""

from __future__ import annotations

import pytest

from openk2.agent.guard import BUILTIN_RULES, RuleError, load_rules


def test_builtins_pass_their_self_tests() -> None:
    for rule in BUILTIN_RULES:
        rule.self_test()
        assert rule.match and rule.not_match, rule.name


@pytest.mark.parametrize(
    "entry, message",
    [
        # the classic miss: `rm -rf*` does not match `rm -fr`
        ({"decision": "deny", "pattern": "rm -rf*", "match": ["rm -fr x"]}, "does not match"),
        (
            {"decision": "ask", "pattern": "git push", "not_match": ["git push origin"]},
            "wrongly matches",
        ),
        ({"decision": "deny", "path": "secrets/*", "match": ["secrets/a/b"]}, "does not match"),
        ({"decision": "block", "pattern": "x"}, "allow, ask or deny"),
        ({"decision": "deny"}, "exactly one"),
        ({"decision": "deny", "tool": "mcp:x.*", "match": ["mcp:y.z"]}, "does not match"),
        ({"decision": "deny", "pattern": "x", "path": "y"}, "exactly one"),
        ({"decision": "deny", "pattern": "'unclosed"}, "not valid shell words"),
        ({"decision": "deny", "pattern": "x", "match": "x"}, "lists of strings"),
    ],
)
def test_broken_rule_rejected_at_load(entry: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        load_rules([entry])


def test_pattern_matches_every_subcommand() -> None:
    (rule,) = load_rules(
        [
            {
                "decision": "deny",
                "pattern": "curl",
                "match": [
                    "ls && curl x",
                    "echo $(curl x)",
                    "sudo /usr/bin/curl x",
                    "sh -c 'curl x'",
                ],
                "not_match": ["curly", "echo curl"],
            }
        ]
    )
    assert rule.hits("timeout 3 curl x")


def test_path_rule_globs() -> None:
    (rule,) = load_rules(
        [
            {
                "decision": "ask",
                "path": "secrets/**",
                "match": ["secrets", "secrets/a/b.txt"],
                "not_match": ["src/secrets.py"],
            }
        ]
    )
    (name_rule,) = load_rules([{"decision": "deny", "path": "*.pem", "match": ["a/b/key.pem"]}])
    assert rule.verdict == "ask" and name_rule.verdict == "deny"
