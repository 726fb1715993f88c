# The texts of the encoder test; sentences.rs holds the same list for Rust.
SENTENCES = [
    "A man is eating food.",
    "Wick trains models on your own data, on your own computer.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "naïve café résumé — “quotes”, emoji 🙂 and CJK 東京",
    "",
    " ".join(["The long review goes on and on about the product and its many small faults."] * 30),
]
