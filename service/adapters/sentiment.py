"""VADER sentiment for signal text; the caller passes the compound score to classify()."""

from __future__ import annotations

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


class VaderSentiment:
    """Scores free text with VADER; one analyzer (lexicon loaded once) per instance."""

    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()

    def compound(self, text: str | None) -> float | None:
        """The VADER compound score in [-1, 1]; None when there is no text."""
        if text is None or not text.strip():
            return None
        return float(self._analyzer.polarity_scores(text)["compound"])
