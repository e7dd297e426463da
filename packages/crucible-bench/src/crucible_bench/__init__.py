"""Statistical tests, effect sizes, power analysis and multiple-comparison corrections checked against R and NIST.

Every test returns a frozen result with `statistic`, `pvalue`, `df` (where defined), `n`,
effect sizes with confidence intervals, a `method` name and an APA-style `interpretation`, and renders
as text (`print(result)`), HTML in notebooks, `to_dict()` and `to_polars()`.

Examples:
    >>> import crucible_bench as cb
    >>> r = cb.ttest([5.1, 4.9, 5.6, 5.8, 6.0], [4.1, 4.4, 4.0, 4.8, 4.3])
    >>> round(r.pvalue, 4)
    0.0024
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crucible_bench._version import __version__
from crucible_core._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from crucible_bench._adjust import AdjustMethod, adjust_pvalues
    from crucible_bench._anova import (
        AnovaEffect,
        AnovaResult,
        AnovaTableResult,
        FriedmanResult,
        KruskalResult,
        anova_oneway,
        anova_twoway,
        friedman,
        kruskal,
        rm_anova,
        welch_anova,
    )
    from crucible_bench._assumptions import AssumptionResult, bartlett, levene, shapiro
    from crucible_bench._bootstrap import BootstrapResult, bootstrap_ci
    from crucible_bench._compare import (
        AccuracyComparisonResult,
        ComparisonResult,
        GroupComparisonResult,
        PairwiseComparison,
        SampleSizePlan,
        compare,
        compare_accuracy,
        compare_groups,
        plan_sample_size,
    )
    from crucible_bench._correlation import (
        CorrelationResult,
        kendall,
        pearson,
        spearman,
    )
    from crucible_bench._effect import (
        EffectSizeResult,
        cliffs_delta,
        cohen_dav,
        cohen_dz,
        cohens_d,
        cohens_h,
        epsilon_squared,
        eta_squared,
        glass_delta,
        hedges_g,
        odds_ratio,
        omega_squared,
        rank_biserial,
        risk_difference,
    )
    from crucible_bench._group_sequential import (
        GroupSequentialDesign,
        group_sequential_design,
    )
    from crucible_bench._power import (
        PowerResult,
        power_anova,
        power_chi2,
        power_proportions,
        power_ttest,
        power_ttest_unequal,
    )
    from crucible_bench._rank import (
        MannWhitneyResult,
        WilcoxonResult,
        mann_whitney,
        wilcoxon,
    )
    from crucible_bench._sequential import (
        ConfidenceSequence,
        ConfidenceSequenceResult,
        FamilyMethod,
        SequentialFamilyResult,
        confidence_sequence,
        e_bh,
        paired_confidence_sequence,
        proportion_difference_sequence,
        sequential_family,
    )
    from crucible_bench._tables import (
        ChiSquareResult,
        FisherResult,
        McNemarResult,
        chi2_goodness_of_fit,
        chi2_independence,
        fisher_exact,
        mcnemar,
    )
    from crucible_bench._ttest import TtestResult, ttest
    from crucible_bench.exceptions import (
        BenchError,
        ConvergenceError,
        InsufficientDataError,
        InvalidInputError,
        InvalidParameterError,
    )

# Each name loads with its submodule on first use (`cb.ttest`, `from crucible_bench import compare`),
# numpy and attrs with the first of them: `import crucible_bench` alone loads neither.
if not TYPE_CHECKING:  # type checkers see the imports above, and flag a typo
    __getattr__, __dir__ = _lazy_exports(
        __name__,
        {
            "crucible_bench._adjust": ("AdjustMethod", "adjust_pvalues"),
            "crucible_bench._anova": (
                "AnovaEffect",
                "AnovaResult",
                "AnovaTableResult",
                "FriedmanResult",
                "KruskalResult",
                "anova_oneway",
                "anova_twoway",
                "friedman",
                "kruskal",
                "rm_anova",
                "welch_anova",
            ),
            "crucible_bench._assumptions": (
                "AssumptionResult",
                "bartlett",
                "levene",
                "shapiro",
            ),
            "crucible_bench._bootstrap": ("BootstrapResult", "bootstrap_ci"),
            "crucible_bench._compare": (
                "AccuracyComparisonResult",
                "ComparisonResult",
                "GroupComparisonResult",
                "PairwiseComparison",
                "SampleSizePlan",
                "compare",
                "compare_accuracy",
                "compare_groups",
                "plan_sample_size",
            ),
            "crucible_bench._correlation": (
                "CorrelationResult",
                "kendall",
                "pearson",
                "spearman",
            ),
            "crucible_bench._effect": (
                "EffectSizeResult",
                "cliffs_delta",
                "cohen_dav",
                "cohen_dz",
                "cohens_d",
                "cohens_h",
                "epsilon_squared",
                "eta_squared",
                "glass_delta",
                "hedges_g",
                "odds_ratio",
                "omega_squared",
                "rank_biserial",
                "risk_difference",
            ),
            "crucible_bench._group_sequential": (
                "GroupSequentialDesign",
                "group_sequential_design",
            ),
            "crucible_bench._power": (
                "PowerResult",
                "power_anova",
                "power_chi2",
                "power_proportions",
                "power_ttest",
                "power_ttest_unequal",
            ),
            "crucible_bench._rank": (
                "MannWhitneyResult",
                "WilcoxonResult",
                "mann_whitney",
                "wilcoxon",
            ),
            "crucible_bench._sequential": (
                "ConfidenceSequence",
                "ConfidenceSequenceResult",
                "FamilyMethod",
                "SequentialFamilyResult",
                "confidence_sequence",
                "e_bh",
                "paired_confidence_sequence",
                "proportion_difference_sequence",
                "sequential_family",
            ),
            "crucible_bench._tables": (
                "ChiSquareResult",
                "FisherResult",
                "McNemarResult",
                "chi2_goodness_of_fit",
                "chi2_independence",
                "fisher_exact",
                "mcnemar",
            ),
            "crucible_bench._ttest": ("TtestResult", "ttest"),
            "crucible_bench.exceptions": (
                "BenchError",
                "ConvergenceError",
                "InsufficientDataError",
                "InvalidInputError",
                "InvalidParameterError",
            ),
        },
    )

__all__ = (
    # comparisons researchers run
    "compare",
    "compare_groups",
    "compare_accuracy",
    "plan_sample_size",
    # two-sample and one-sample tests
    "ttest",
    "mann_whitney",
    "wilcoxon",
    # k-sample tests and ANOVA
    "anova_oneway",
    "welch_anova",
    "kruskal",
    "anova_twoway",
    "rm_anova",
    "friedman",
    # contingency tables
    "chi2_independence",
    "chi2_goodness_of_fit",
    "fisher_exact",
    "mcnemar",
    # assumptions
    "shapiro",
    "levene",
    "bartlett",
    # effect sizes
    "cohens_d",
    "hedges_g",
    "glass_delta",
    "cohen_dz",
    "cohen_dav",
    "eta_squared",
    "omega_squared",
    "epsilon_squared",
    "rank_biserial",
    "cliffs_delta",
    "odds_ratio",
    "cohens_h",
    "risk_difference",
    # power and sample size
    "power_ttest",
    "power_ttest_unequal",
    "power_anova",
    "power_chi2",
    "power_proportions",
    # anytime-valid and group-sequential inference
    "confidence_sequence",
    "paired_confidence_sequence",
    "proportion_difference_sequence",
    "ConfidenceSequence",
    "e_bh",
    "sequential_family",
    "FamilyMethod",
    "group_sequential_design",
    # corrections, resampling, correlation
    "adjust_pvalues",
    "AdjustMethod",
    "bootstrap_ci",
    "pearson",
    "spearman",
    "kendall",
    # results
    "AccuracyComparisonResult",
    "AnovaEffect",
    "AnovaResult",
    "AnovaTableResult",
    "AssumptionResult",
    "BootstrapResult",
    "ChiSquareResult",
    "ComparisonResult",
    "ConfidenceSequenceResult",
    "CorrelationResult",
    "EffectSizeResult",
    "FisherResult",
    "FriedmanResult",
    "GroupComparisonResult",
    "GroupSequentialDesign",
    "KruskalResult",
    "MannWhitneyResult",
    "McNemarResult",
    "PairwiseComparison",
    "PowerResult",
    "SampleSizePlan",
    "SequentialFamilyResult",
    "TtestResult",
    "WilcoxonResult",
    # errors
    "BenchError",
    "ConvergenceError",
    "InsufficientDataError",
    "InvalidInputError",
    "InvalidParameterError",
    # metadata
    "__version__",
)
