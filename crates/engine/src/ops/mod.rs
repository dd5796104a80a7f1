//! Incremental operators and the tree that connects them.
//!
//! Every operator maps the change of its inputs to the change of its output (see
//! [`Operator`]). Stateless operators (filter, projection) apply DataFusion physical
//! expressions to the change rows as they are, weights untouched; stateful ones (aggregate)
//! keep exactly what they need to produce their output's change, and can snapshot it.
//!
//! Streams carry their *key* alongside the visible columns: every batch is laid out as the
//! visible columns followed by the key columns, which identify a result row (the GROUP BY
//! values, or the source's primary key). Visible columns come first so DataFusion
//! expressions planned against the visible schema index the batch unchanged.

mod accumulator;
pub mod aggregate;
mod arrangement;
pub mod filter;
pub mod join;
mod multiset;
pub mod project;
pub mod topn;
pub mod union;
pub mod window_expand;

use arrow::datatypes::SchemaRef;

use crate::change::ChangeBatch;
use crate::error::Result;
use crate::memory::StateUsage;

/// An incremental operator over Z-set change batches.
///
/// # Guarantee
///
/// Let `R` be the relation the operator's inputs held before a step and `ΔR` the change fed
/// to the step (one batch per input, in input order). The batch a step returns is a change
/// `ΔO` such that `O(R) + ΔO = O(R + ΔR)`: folding every step's output gives the operator's
/// result over the folded inputs. Steps must see every input change exactly once and in order;
/// operators never see a Debezium event, only exact +1/-1 weighted rows.
///
/// Operators are unary or binary (joins), so `inputs` holds one or two batches.
pub trait Operator: Send + std::fmt::Debug {
    /// The output's schema: visible columns, then key columns.
    fn schema(&self) -> &SchemaRef;

    /// Consumes the inputs' changes and returns the output's change.
    fn step(&mut self, inputs: Vec<ChangeBatch>) -> Result<ChangeBatch>;

    /// The operator's state as bytes; empty for stateless operators.
    fn snapshot(&self) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    /// Replaces the operator's state with one [`Operator::snapshot`] produced.
    fn restore(&mut self, _state: &[u8]) -> Result<()> {
        Ok(())
    }

    /// What each part of the state holds and costs (a join's two sides, a top-N's ranking),
    /// for `eddy bench`; operators whose state is measured by its snapshot alone give none.
    fn state_usage(&self) -> Result<Vec<StateUsage>> {
        Ok(Vec::new())
    }

    /// One line for `eddy run --explain`: what the operator computes and what state it keeps
    /// (the node adds its key). Operators that do not say more show their type's name.
    fn explain(&self) -> String {
        let name = std::any::type_name::<Self>();
        name.rsplit("::").next().unwrap_or(name).to_string()
    }
}

/// Where an operator's input comes from.
#[derive(Debug)]
pub enum Input {
    /// The normalized changes of a source table (index into the pipeline's sources).
    Source(usize),
    Node(Box<Node>),
}

/// An operator with its inputs: the incremental plan is a tree of these.
#[derive(Debug)]
pub struct Node {
    pub operator: Box<dyn Operator>,
    pub inputs: Vec<Input>,
}

impl Node {
    pub fn new(operator: impl Operator + 'static, inputs: Vec<Input>) -> Self {
        Self {
            operator: Box::new(operator),
            inputs,
        }
    }

    /// Runs one step of the whole tree on the sources' changes.
    pub fn step(&mut self, sources: &[ChangeBatch]) -> Result<ChangeBatch> {
        let inputs = self
            .inputs
            .iter_mut()
            .map(|input| match input {
                Input::Source(i) => Ok(sources[*i].clone()),
                Input::Node(node) => node.step(sources),
            })
            .collect::<Result<Vec<_>>>()?;
        self.operator.step(inputs)
    }

    /// The tree as indented lines, one per operator with its output key, sources named by
    /// `source`.
    pub fn explain(&self, depth: usize, source: &dyn Fn(usize) -> String) -> String {
        let key: Vec<&str> = self
            .operator
            .schema()
            .fields()
            .iter()
            .filter_map(|f| f.name().strip_prefix("__key."))
            .collect();
        let indent = "  ".repeat(depth);
        let mut out = format!(
            "{indent}{}; key ({})\n",
            self.operator.explain(),
            key.join(", ")
        );
        for input in &self.inputs {
            match input {
                Input::Source(i) => out.push_str(&format!("{indent}  {}\n", source(*i))),
                Input::Node(node) => out.push_str(&node.explain(depth + 1, source)),
            }
        }
        out
    }

    /// The operators in pre-order, for snapshots.
    pub fn operators(&self) -> Vec<&dyn Operator> {
        let mut out = vec![self.operator.as_ref()];
        for input in &self.inputs {
            if let Input::Node(node) = input {
                out.extend(node.operators());
            }
        }
        out
    }

    /// The operators in pre-order, mutably, for restores.
    pub fn operators_mut(&mut self) -> Vec<&mut Box<dyn Operator>> {
        let mut out = vec![&mut self.operator];
        for input in &mut self.inputs {
            if let Input::Node(node) = input {
                out.extend(node.operators_mut());
            }
        }
        out
    }
}

/// Takes the single input of a unary operator.
fn single(inputs: Vec<ChangeBatch>) -> ChangeBatch {
    inputs
        .into_iter()
        .next()
        .expect("the plan gives every unary operator exactly one input")
}
