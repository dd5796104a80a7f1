//! `UNION ALL` compiled into a [`UnionOp`]; `UNION` is DataFusion's aggregate over it, and
//! `INTERSECT` and `EXCEPT` are semi and anti joins (see [`join`](super::join)).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion_expr::Union;

use super::join::unique_name;
use super::{Compiled, Compiler};
use crate::error::Result;
use crate::ops::union::{Branch, UnionOp};
use crate::ops::{Input, Node};

impl Compiler<'_> {
    pub(super) fn union(&self, union: &Union) -> Result<Compiled> {
        let branches = union
            .inputs
            .iter()
            .map(|input| self.compile(input))
            .collect::<Result<Vec<_>>>()?;
        let keyed = branches.iter().all(|b| b.key.is_some());
        let mut key: Vec<FieldRef> = Vec::new();
        let mut layouts: Vec<Branch> = branches
            .iter()
            .map(|b| Branch {
                visible: b.schema.fields().len(),
                key_slots: Vec::new(),
            })
            .collect();
        if keyed {
            let mut names = HashSet::from(["branch".to_string()]);
            key.push(Arc::new(Field::new("branch", DataType::Int32, false)));
            let types = |b: &Compiled| -> Vec<DataType> {
                b.key
                    .iter()
                    .flatten()
                    .map(|f| f.data_type().clone())
                    .collect()
            };
            let shared = branches.iter().all(|b| types(b) == types(&branches[0]));
            for (i, branch) in branches.iter().enumerate() {
                if shared && i > 0 {
                    layouts[i].key_slots = layouts[0].key_slots.clone();
                    continue;
                }
                for field in branch.key.iter().flatten() {
                    layouts[i].key_slots.push(key.len() - 1);
                    let name = unique_name(&mut names, field.name(), None);
                    key.push(Arc::new(Field::new(name, field.data_type().clone(), true)));
                }
            }
        }
        let key = keyed.then_some(key);
        let schema = Compiled::batch_schema(&union.schema, key.as_ref());
        let inputs = branches
            .into_iter()
            .map(|b| Input::Node(Box::new(b.node)))
            .collect();
        Ok(Compiled {
            node: Node::new(UnionOp::new(layouts, keyed, schema), inputs),
            schema: union.schema.clone(),
            key,
        })
    }
}
