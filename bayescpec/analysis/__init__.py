"""Analysis: why the posterior says what it says (empty until the evidence-analytics issue fills it)."""
