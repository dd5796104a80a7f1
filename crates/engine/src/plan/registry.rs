//! DataFusion's functions by name, each group built when a query first names one of its own.
//!
//! DataFusion registers its functions by building every one (about 300 scalar, 40
//! aggregate and 11 window functions, each with its signature) and asking each its names.
//! Building them all is a fifth of an empty job's memory: the code of every constructor is
//! paged in, although a query names a handful. Here the names are known up front, from
//! [`function_names`](super::function_names) (generated from DataFusion's own lists, which
//! a test checks it still is), and a name builds only its group the first time it is looked
//! up: the same functions under the same names, built as needed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use datafusion_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion_functions_aggregate as aggregate;
use datafusion_functions_window as window;

/// A function DataFusion registers by name: scalar, aggregate or window.
pub trait Named: Send + Sync + 'static {
    /// The function's name.
    fn name(&self) -> &str;
    /// The other names it answers to.
    fn aliases(&self) -> &[String];
}

macro_rules! named {
    ($($function:ty),*) => {$(
        impl Named for $function {
            fn name(&self) -> &str {
                <$function>::name(self)
            }
            fn aliases(&self) -> &[String] {
                <$function>::aliases(self)
            }
        }
    )*};
}

named!(ScalarUDF, AggregateUDF, WindowUDF);

/// A constructor of some of DataFusion's functions.
pub type Group<F> = fn() -> Vec<Arc<F>>;

/// DataFusion's scalar functions, in the order `all_default_functions` chains them.
pub const SCALAR_GROUPS: &[Group<ScalarUDF>] = &[
    datafusion_functions::core::functions,
    datafusion_functions::datetime::functions,
    datafusion_functions::encoding::functions,
    datafusion_functions::math::functions,
    datafusion_functions::regex::functions,
    datafusion_functions::crypto::functions,
    datafusion_functions::unicode::functions,
    datafusion_functions::string::functions,
];

/// DataFusion's aggregate functions, one per group, in `all_default_aggregate_functions`'
/// order.
pub const AGGREGATE_GROUPS: &[Group<AggregateUDF>] = &[
    || vec![aggregate::any_value::any_value_udaf()],
    || vec![aggregate::array_agg::array_agg_udaf()],
    || vec![aggregate::first_last::first_value_udaf()],
    || vec![aggregate::first_last::last_value_udaf()],
    || vec![aggregate::covariance::covar_samp_udaf()],
    || vec![aggregate::covariance::covar_pop_udaf()],
    || vec![aggregate::correlation::corr_udaf()],
    || vec![aggregate::sum::sum_udaf()],
    || vec![aggregate::min_max::max_udaf()],
    || vec![aggregate::min_max::min_udaf()],
    || vec![aggregate::median::median_udaf()],
    || vec![aggregate::count::count_udaf()],
    || vec![aggregate::regr::regr_slope_udaf()],
    || vec![aggregate::regr::regr_intercept_udaf()],
    || vec![aggregate::regr::regr_count_udaf()],
    || vec![aggregate::regr::regr_r2_udaf()],
    || vec![aggregate::regr::regr_avgx_udaf()],
    || vec![aggregate::regr::regr_avgy_udaf()],
    || vec![aggregate::regr::regr_sxx_udaf()],
    || vec![aggregate::regr::regr_syy_udaf()],
    || vec![aggregate::regr::regr_sxy_udaf()],
    || vec![aggregate::variance::var_samp_udaf()],
    || vec![aggregate::variance::var_pop_udaf()],
    || vec![aggregate::stddev::stddev_udaf()],
    || vec![aggregate::stddev::stddev_pop_udaf()],
    || vec![aggregate::approx_median::approx_median_udaf()],
    || vec![aggregate::approx_distinct::approx_distinct_udaf()],
    || vec![aggregate::approx_percentile_cont::approx_percentile_cont_udaf()],
    || {
        vec![
            aggregate::approx_percentile_cont_with_weight::approx_percentile_cont_with_weight_udaf(
            ),
        ]
    },
    || vec![aggregate::percentile_cont::percentile_cont_udaf()],
    || vec![aggregate::string_agg::string_agg_udaf()],
    || vec![aggregate::bit_and_or_xor::bit_and_udaf()],
    || vec![aggregate::bit_and_or_xor::bit_or_udaf()],
    || vec![aggregate::bit_and_or_xor::bit_xor_udaf()],
    || vec![aggregate::bool_and_or::bool_and_udaf()],
    || vec![aggregate::bool_and_or::bool_or_udaf()],
    || vec![aggregate::average::avg_udaf()],
    || vec![aggregate::grouping::grouping_udaf()],
    || vec![aggregate::nth_value::nth_value_udaf()],
];

/// DataFusion's window functions, one per group, in `all_default_window_functions`' order.
pub const WINDOW_GROUPS: &[Group<WindowUDF>] = &[
    || vec![window::cume_dist::cume_dist_udwf()],
    || vec![window::row_number::row_number_udwf()],
    || vec![window::lead_lag::lead_udwf()],
    || vec![window::lead_lag::lag_udwf()],
    || vec![window::rank::rank_udwf()],
    || vec![window::rank::dense_rank_udwf()],
    || vec![window::rank::percent_rank_udwf()],
    || vec![window::ntile::ntile_udwf()],
    || vec![window::nth_value::first_value_udwf()],
    || vec![window::nth_value::last_value_udwf()],
    || vec![window::nth_value::nth_value_udwf()],
];

/// Functions by name and alias: a session's own, then DataFusion's, whose groups are built
/// on first use.
///
/// Invariant: `names` lists each name and alias of the functions of `groups` exactly once,
/// sorted, with the group that defines it last (a later function replaces an earlier one
/// of the same name, as in DataFusion's registration).
pub struct Registry<F: 'static> {
    groups: &'static [Group<F>],
    built: Box<[OnceLock<Vec<Arc<F>>>]>,
    names: &'static [(&'static str, u8)],
    /// The session's own functions, under their names and aliases; they replace
    /// DataFusion's of the same name.
    own: HashMap<String, Arc<F>>,
}

impl<F: Named> Registry<F> {
    /// DataFusion's functions of `groups`, named by `names`, under `own`.
    pub fn new(
        groups: &'static [Group<F>],
        names: &'static [(&'static str, u8)],
        own: impl IntoIterator<Item = Arc<F>>,
    ) -> Self {
        Self {
            groups,
            built: groups.iter().map(|_| OnceLock::new()).collect(),
            names,
            own: by_name(own)
                .into_iter()
                .map(|(name, f)| (name.to_string(), f))
                .collect(),
        }
    }

    /// The function named (or aliased) `name`.
    pub fn get(&self, name: &str) -> Option<Arc<F>> {
        if let Some(function) = self.own.get(name) {
            return Some(Arc::clone(function));
        }
        let found = self.names.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        let group = usize::from(self.names[found].1);
        let functions = self.built[group].get_or_init(self.groups[group]);
        functions
            .iter()
            .rev()
            .find(|f| f.name() == name || f.aliases().iter().any(|a| a == name))
            .cloned()
    }

    /// Every name and alias.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.names.iter().map(|(n, _)| n.to_string()).collect();
        names.extend(
            self.own
                .keys()
                .filter(|n| self.names.binary_search_by(|(d, _)| (*d).cmp(n)).is_err())
                .cloned(),
        );
        names
    }
}

/// Each function under its name and under each of its aliases; a later one replaces an
/// earlier one of the same name.
fn by_name<F: Named>(functions: impl IntoIterator<Item = Arc<F>>) -> BTreeMap<String, Arc<F>> {
    let mut map = BTreeMap::new();
    for function in functions {
        for alias in function.aliases() {
            map.insert(alias.clone(), Arc::clone(&function));
        }
        map.insert(function.name().to_string(), function);
    }
    map
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::super::function_names::{AGGREGATE_NAMES, SCALAR_NAMES, WINDOW_NAMES};
    use super::*;

    /// Each name and alias of the functions of `groups`, with the group defining it last: what
    /// [`function_names`](super::function_names) must hold.
    fn names_of<F: Named>(groups: &[Group<F>]) -> BTreeMap<String, u8> {
        let mut names = BTreeMap::new();
        for (index, group) in groups.iter().enumerate() {
            let index = u8::try_from(index).expect("fewer than 256 groups");
            for (name, _) in by_name(group()) {
                names.insert(name, index);
            }
        }
        names
    }

    fn table(out: &mut String, constant: &str, names: &BTreeMap<String, u8>) {
        writeln!(out, "\npub const {constant}: &[(&str, u8)] = &[").unwrap();
        for (name, group) in names {
            writeln!(out, "    ({name:?}, {group}),").unwrap();
        }
        writeln!(out, "];").unwrap();
    }

    /// `function_names.rs` as DataFusion's functions make it.
    fn generated() -> String {
        let mut out = String::from(
            "//! Which group of DataFusion's functions defines each function name \
             (generated by\n//! `registry::tests::function_names_are_datafusions`; \
             `EDDY_UPDATE_FUNCTION_NAMES=1` rewrites it).\n",
        );
        for (kind, names) in [
            ("SCALAR", names_of(SCALAR_GROUPS)),
            ("AGGREGATE", names_of(AGGREGATE_GROUPS)),
            ("WINDOW", names_of(WINDOW_GROUPS)),
        ] {
            write!(
                out,
                "\n/// Each name and alias of a {} function, sorted, with its group's index in\n\
                 /// [`{kind}_GROUPS`](super::registry::{kind}_GROUPS).",
                kind.to_lowercase()
            )
            .unwrap();
            table(&mut out, &format!("{kind}_NAMES"), &names);
        }
        out
    }

    #[test]
    fn function_names_are_datafusions() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/plan/function_names.rs");
        let expected = generated();
        if std::env::var_os("EDDY_UPDATE_FUNCTION_NAMES").is_some() {
            std::fs::write(path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(path).unwrap();
        assert!(
            actual == expected,
            "{path} is not what DataFusion's functions give: rerun this test with \
             EDDY_UPDATE_FUNCTION_NAMES=1"
        );
    }

    /// Every name DataFusion's eager registration gives resolves, lazily, to the function
    /// it registers (the same name and aliases), and no other name does.
    fn resolves_as_datafusion<F: Named>(
        groups: &'static [Group<F>],
        names: &'static [(&'static str, u8)],
        eager: Vec<Arc<F>>,
    ) {
        let eager = by_name(eager);
        let registry = Registry::new(groups, names, Vec::new());
        let mut lazy = registry.names();
        lazy.sort();
        assert_eq!(lazy, eager.keys().cloned().collect::<Vec<_>>());
        for (name, function) in &eager {
            let found = registry.get(name).unwrap_or_else(|| panic!("{name}"));
            // The same function (a few, such as `now`, are built anew at each call).
            let same = (found.name(), found.aliases()) == (function.name(), function.aliases());
            assert!(same, "{name}: {} for {}", found.name(), function.name());
        }
        assert!(registry.get("no_such_function").is_none());
    }

    #[test]
    fn lazy_registries_resolve_every_name_as_datafusions_eager_ones() {
        resolves_as_datafusion(
            SCALAR_GROUPS,
            SCALAR_NAMES,
            datafusion_functions::all_default_functions(),
        );
        resolves_as_datafusion(
            AGGREGATE_GROUPS,
            AGGREGATE_NAMES,
            aggregate::all_default_aggregate_functions(),
        );
        resolves_as_datafusion(
            WINDOW_GROUPS,
            WINDOW_NAMES,
            window::all_default_window_functions(),
        );
    }

    #[test]
    fn own_functions_replace_datafusions_and_build_no_group() {
        let own = Arc::new(AggregateUDF::from(super::super::functions::ExactSum::new()));
        let registry = Registry::new(AGGREGATE_GROUPS, AGGREGATE_NAMES, [Arc::clone(&own)]);
        assert!(Arc::ptr_eq(&registry.get("sum").unwrap(), &own));
        assert!(registry.built.iter().all(|group| group.get().is_none()));
        assert_eq!(registry.get("count").unwrap().name(), "count");
        let built = registry.built.iter().filter(|group| group.get().is_some());
        assert_eq!(built.count(), 1, "only COUNT's group");
    }
}
