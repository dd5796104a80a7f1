//! UNNEST of one list column (what HOP windows expand rows with) into [`WindowExpandOp`].

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion_expr::Unnest;

use super::{Compiled, Compiler};
use crate::error::{Error, Result};
use crate::ops::window_expand::WindowExpandOp;
use crate::ops::{Input, Node};

impl Compiler<'_> {
    pub(super) fn unnest(&self, unnest: &Unnest) -> Result<Compiled> {
        let [(list, depth)] = unnest.list_type_columns.as_slice() else {
            return Err(Error::not_incremental("UNNEST of several columns", None));
        };
        if depth.depth != 1 || !unnest.struct_type_columns.is_empty() {
            return Err(Error::not_incremental(
                "UNNEST of structs or nested lists",
                None,
            ));
        }
        let input = self.compile(&unnest.input)?;
        let visible = input.schema.fields().len();
        let key = input.key.as_ref().map(|key| {
            let mut fields: Vec<FieldRef> = key.clone();
            fields.push(Arc::new(Field::new("__ordinal", DataType::UInt64, false)));
            fields
        });
        let key_columns = match &input.key {
            Some(key) => (visible..visible + key.len()).collect(),
            None => Vec::new(),
        };
        let schema = Compiled::batch_schema(&unnest.schema, key.as_ref());
        let op = WindowExpandOp::new(
            *list,
            unnest.dependency_indices.clone(),
            key_columns,
            unnest.options.null_handling,
            schema,
        );
        Ok(Compiled {
            node: Node::new(op, vec![Input::Node(Box::new(input.node))]),
            schema: unnest.schema.clone(),
            key,
        })
    }
}
