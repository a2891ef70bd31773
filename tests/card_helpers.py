"""What the card tests and the publish tests share: a student's card settings with overrides, and a card's
YAML front matter read back."""

from __future__ import annotations

import yaml

from engine.hub.card import CardInfo


def card_info(**overrides) -> CardInfo:
    values = dict(
        repo_id="someone/shapes-dfd",
        base="shapes-tiny",
        method="dfd",
        steps=200,
        t_list=[0.999, 0.937, 0.833, 0.0],
        settings={"lora_rank": 16, "data_forcing_prob": 0.5},
        metrics={"diversity": 0.4123, "named correct": 0.875},
        samples=[("samples/seed1.mp4", "a red circle")],
        license="apache-2.0",
        source="job j-20261121-abcdef",
    )
    values.update(overrides)
    return CardInfo(**values)


def card_front(card: str) -> dict:
    """The card's front matter (between its first two `---` lines) as a dict."""
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])
