//! A hand-written reader for the Prisma schema language that turns models into source tables.
//!
//! Only what decides a table's shape is interpreted (names, `@map`, ids, scalar and native
//! types); everything else (defaults, relations, indexes, generators) is checked for syntax and
//! then dropped, so a schema that Prisma accepts is read without Eddy knowing every attribute's
//! meaning.

use std::collections::HashSet;
use std::iter::Peekable;
use std::str::Chars;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

use super::{Catalog, ColumnDef, Provider, TableDef};
use crate::error::{Error, Result};

/// Parses a Prisma schema into one table per model.
///
/// The datasource's provider decides the default native type of each scalar (Prisma's
/// documented defaults); without a datasource the schema is read as PostgreSQL. Relation fields
/// and `@ignore`d fields are not columns; `@@ignore`d models, views and composite types are not
/// tables.
pub fn parse(source: &str) -> Result<Catalog> {
    let document = Parser::new(source)?.document()?;
    let provider = provider(&document.datasources)?;
    let scope = Scope::new(&document, provider)?;
    let mut tables: Vec<TableDef> = Vec::new();
    for model in document.blocks.iter().filter(|b| b.is_table()) {
        let table = scope.table(model)?;
        if tables.iter().any(|t| t.name == table.name) {
            return Err(schema_error(
                model.line,
                format!("table `{}` is defined twice", table.name),
            ));
        }
        tables.push(table);
    }
    Ok(Catalog { provider, tables })
}

fn schema_error(line: usize, message: impl Into<String>) -> Error {
    Error::Schema {
        line,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// Kept as written: only native type arguments are ever read as numbers.
    Num(String),
    Punct(char),
    At,
    AtAt,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    line: usize,
}

fn describe(token: Option<&Tok>) -> String {
    match token {
        None => "end of file".to_string(),
        Some(Tok::Ident(name)) => format!("`{name}`"),
        Some(Tok::Str(text)) => format!("string \"{text}\""),
        Some(Tok::Num(number)) => format!("number {number}"),
        Some(Tok::Punct(c)) => format!("`{c}`"),
        Some(Tok::At) => "`@`".to_string(),
        Some(Tok::AtAt) => "`@@`".to_string(),
    }
}

struct Lexer<'a> {
    chars: Peekable<Chars<'a>>,
    line: usize,
}

impl Lexer<'_> {
    fn tokenize(source: &str) -> Result<Vec<Token>> {
        let mut lexer = Lexer {
            chars: source.chars().peekable(),
            line: 1,
        };
        let mut tokens = Vec::new();
        while let Some(token) = lexer.token()? {
            tokens.push(token);
        }
        Ok(tokens)
    }

    fn token(&mut self) -> Result<Option<Token>> {
        self.skip_trivia();
        let line = self.line;
        let Some(c) = self.chars.next() else {
            return Ok(None);
        };
        let kind = match c {
            '"' => Tok::Str(self.string(line)?),
            '@' if self.chars.next_if_eq(&'@').is_some() => Tok::AtAt,
            '@' => Tok::At,
            '{' | '}' | '(' | ')' | '[' | ']' | ',' | ':' | '=' | '?' | '.' => Tok::Punct(c),
            c if c.is_ascii_alphabetic() || c == '_' => {
                Tok::Ident(self.take_while(c, |c| c.is_ascii_alphanumeric() || c == '_'))
            }
            c if c.is_ascii_digit() || (c == '-' && self.peek_is(|c| c.is_ascii_digit())) => {
                Tok::Num(self.take_while(c, |c| c.is_ascii_digit() || c == '.'))
            }
            c => return Err(schema_error(line, format!("unexpected character `{c}`"))),
        };
        Ok(Some(Token { kind, line }))
    }

    fn peek_is(&mut self, test: impl Fn(char) -> bool) -> bool {
        self.chars.peek().is_some_and(|&c| test(c))
    }

    /// Skips whitespace and comments; `///` doc comments are comments too.
    fn skip_trivia(&mut self) {
        while let Some(&c) = self.chars.peek() {
            if c == '\n' {
                self.line += 1;
            } else if c == '/' && self.chars.clone().nth(1) == Some('/') {
                while self.chars.next_if(|&c| c != '\n').is_some() {}
                continue;
            } else if !c.is_whitespace() && c != '\u{feff}' {
                return;
            }
            self.chars.next();
        }
    }

    fn take_while(&mut self, first: char, test: impl Fn(char) -> bool) -> String {
        let mut text = first.to_string();
        while let Some(c) = self.chars.next_if(|&c| test(c)) {
            text.push(c);
        }
        text
    }

    /// Reads a string body; Prisma strings never span lines, so a newline means it is unclosed.
    fn string(&mut self, line: usize) -> Result<String> {
        let mut text = String::new();
        loop {
            match self.chars.next() {
                Some('"') => return Ok(text),
                Some('\\') => match self.chars.next() {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some(c) if c != '\n' => text.push(c),
                    _ => break,
                },
                Some(c) if c != '\n' => text.push(c),
                _ => break,
            }
        }
        Err(schema_error(line, "unterminated string: expected `\"`"))
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------

/// An attribute or setting value; only the parts Eddy reads are kept.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Str(String),
    Num(String),
    Ident(String),
    /// A function call such as `now()` or `a(sort: Desc)`; its arguments never matter here.
    Call(String),
    Array(Vec<Expr>),
}

#[derive(Debug, Clone)]
struct Arg {
    name: Option<String>,
    value: Expr,
}

#[derive(Debug, Clone)]
struct Attribute {
    /// `@` or `@@`, for messages.
    sigil: &'static str,
    /// The name without the sigil, e.g. `id` or `db.VarChar`.
    name: String,
    args: Vec<Arg>,
    line: usize,
}

impl Attribute {
    /// The argument given by this name, or else the first argument when it is positional,
    /// as Prisma lets both `@@id([a])` and `@@id(fields: [a])` be written.
    fn arg(&self, name: &str) -> Option<&Expr> {
        let named = self.args.iter().find(|a| a.name.as_deref() == Some(name));
        let positional = || self.args.first().filter(|a| a.name.is_none());
        named.or_else(positional).map(|a| &a.value)
    }

    fn label(&self) -> String {
        format!("{}{}", self.sigil, self.name)
    }
}

fn find_attr<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name == name)
}

#[derive(Debug, Clone, PartialEq)]
enum TypeName {
    Named(String),
    /// `Unsupported("tsvector")`: a database type Prisma itself cannot represent.
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arity {
    Required,
    Optional,
    List,
}

#[derive(Debug, Clone)]
struct FieldDecl {
    name: String,
    ty: TypeName,
    arity: Arity,
    attrs: Vec<Attribute>,
    line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BlockKind {
    Model,
    View,
    /// A composite `type` (MongoDB only).
    Type,
}

/// A `model`, `view` or `type` block.
#[derive(Debug, Clone)]
struct Block {
    kind: BlockKind,
    name: String,
    fields: Vec<FieldDecl>,
    attrs: Vec<Attribute>,
    line: usize,
}

impl Block {
    fn is_table(&self) -> bool {
        self.kind == BlockKind::Model && find_attr(&self.attrs, "ignore").is_none()
    }
}

#[derive(Debug, Clone)]
struct Setting {
    key: String,
    value: Expr,
    line: usize,
}

/// A `datasource` or `generator` block.
#[derive(Debug, Clone)]
struct ConfigBlock {
    name: String,
    settings: Vec<Setting>,
    line: usize,
}

#[derive(Debug, Default)]
struct Document {
    datasources: Vec<ConfigBlock>,
    /// Enum names with their lines; values do not matter since enums become strings.
    enums: Vec<(String, usize)>,
    blocks: Vec<Block>,
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// Bounds recursion so that no input, however deeply nested, can overflow the stack.
const MAX_NESTING: usize = 64;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn new(source: &str) -> Result<Self> {
        Ok(Parser {
            tokens: Lexer::tokenize(source)?,
            pos: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn peek_second(&self) -> Option<&Tok> {
        self.tokens.get(self.pos + 1).map(|t| &t.kind)
    }

    /// The line of the next token, or of the last one at the end of the file.
    fn line(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(1, |t| t.line)
    }

    /// The line of the last consumed token.
    fn previous_line(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map_or(1, |t| t.line)
    }

    fn bump(&mut self) -> Option<Tok> {
        let token = self.tokens.get(self.pos)?.kind.clone();
        self.pos += 1;
        Some(token)
    }

    fn expected(&self, what: &str) -> Error {
        schema_error(
            self.line(),
            format!("expected {what}, found {}", describe(self.peek())),
        )
    }

    fn eat(&mut self, punct: char) -> bool {
        let found = self.peek() == Some(&Tok::Punct(punct));
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, punct: char, what: &str) -> Result<()> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn ident(&mut self, what: &str) -> Result<(String, usize)> {
        let line = self.line();
        match self.peek() {
            Some(Tok::Ident(name)) => {
                let name = name.clone();
                self.pos += 1;
                Ok((name, line))
            }
            _ => Err(self.expected(what)),
        }
    }

    fn document(mut self) -> Result<Document> {
        let mut document = Document::default();
        while self.peek().is_some() {
            let what = "a block (`model`, `enum`, `datasource`, `generator`, `view` or `type`)";
            let (keyword, line) = self.ident(what)?;
            match keyword.as_str() {
                "datasource" => document.datasources.push(self.config_block(line)?),
                "generator" => {
                    self.config_block(line)?;
                }
                "enum" => document.enums.push(self.enumeration()?),
                "model" => document.blocks.push(self.block(BlockKind::Model, line)?),
                "view" => document.blocks.push(self.block(BlockKind::View, line)?),
                "type" => document.blocks.push(self.block(BlockKind::Type, line)?),
                other => {
                    return Err(schema_error(
                        line,
                        format!("expected {what}, found `{other}`"),
                    ));
                }
            }
        }
        Ok(document)
    }

    /// A `datasource` or `generator` block: `key = value` settings.
    fn config_block(&mut self, line: usize) -> Result<ConfigBlock> {
        let (name, _) = self.ident("a block name")?;
        self.expect('{', &format!("`{{` after `{name}`"))?;
        let mut settings = Vec::new();
        while !self.eat('}') {
            let (key, line) = self.ident("a setting name or `}`")?;
            self.expect('=', &format!("`=` after `{key}`"))?;
            let value = self.expr()?;
            settings.push(Setting { key, value, line });
        }
        Ok(ConfigBlock {
            name,
            settings,
            line,
        })
    }

    fn enumeration(&mut self) -> Result<(String, usize)> {
        let (name, line) = self.ident("an enum name")?;
        self.expect('{', &format!("`{{` after `{name}`"))?;
        while !self.eat('}') {
            if self.peek() == Some(&Tok::AtAt) {
                self.attribute()?;
                continue;
            }
            self.ident("an enum value, a block attribute (`@@`) or `}`")?;
            while self.peek() == Some(&Tok::At) {
                self.attribute()?;
            }
        }
        Ok((name, line))
    }

    fn block(&mut self, kind: BlockKind, line: usize) -> Result<Block> {
        let (name, _) = self.ident("a name")?;
        self.expect('{', &format!("`{{` after `{name}`"))?;
        let mut fields = Vec::new();
        let mut attrs = Vec::new();
        while !self.eat('}') {
            if self.peek() == Some(&Tok::AtAt) {
                attrs.push(self.attribute()?);
            } else {
                fields.push(self.field()?);
            }
        }
        Ok(Block {
            kind,
            name,
            fields,
            attrs,
            line,
        })
    }

    /// A field: its name and type on one line, attributes after, and nothing else on the
    /// line (a field's attributes may only wrap inside their parentheses).
    fn field(&mut self) -> Result<FieldDecl> {
        let (name, line) = self.ident("a field name, a block attribute (`@@`) or `}`")?;
        if self.line() != line {
            return Err(schema_error(
                line,
                format!("expected a type after field `{name}` on the same line"),
            ));
        }
        let ty = self.type_name(&name)?;
        let arity = self.arity()?;
        let mut attrs = Vec::new();
        while self.peek() == Some(&Tok::At) {
            attrs.push(self.attribute()?);
        }
        let ends_line = self.line() > self.previous_line();
        if !ends_line && !matches!(self.peek(), None | Some(Tok::Punct('}'))) {
            return Err(self.expected(&format!(
                "an attribute (`@`) or a new line after field `{name}`"
            )));
        }
        Ok(FieldDecl {
            name,
            ty,
            arity,
            attrs,
            line,
        })
    }

    fn type_name(&mut self, field: &str) -> Result<TypeName> {
        let (name, _) = self.ident(&format!("a type for field `{field}`"))?;
        if name != "Unsupported" {
            return Ok(TypeName::Named(name));
        }
        self.expect('(', "`(` after `Unsupported`")?;
        let Some(Tok::Str(db_type)) = self.peek().cloned() else {
            return Err(self.expected("a string naming the database type"));
        };
        self.pos += 1;
        self.expect(')', "`)`")?;
        Ok(TypeName::Unsupported(db_type))
    }

    fn arity(&mut self) -> Result<Arity> {
        if self.eat('?') {
            Ok(Arity::Optional)
        } else if self.eat('[') {
            self.expect(']', "`]` after `[`")?;
            Ok(Arity::List)
        } else {
            Ok(Arity::Required)
        }
    }

    /// `@name`, `@@name` or `@source.Name`, each with optional arguments.
    fn attribute(&mut self) -> Result<Attribute> {
        let sigil = match self.bump() {
            Some(Tok::AtAt) => "@@",
            _ => "@",
        };
        let (mut name, line) = self.ident(&format!("an attribute name after `{sigil}`"))?;
        if self.eat('.') {
            let (native, _) = self.ident(&format!("a native type name after `{name}.`"))?;
            name = format!("{name}.{native}");
        }
        let args = if self.eat('(') {
            self.args()?
        } else {
            Vec::new()
        };
        Ok(Attribute {
            sigil,
            name,
            args,
            line,
        })
    }

    /// Arguments after an opening `(`, up to and including the closing `)`.
    fn args(&mut self) -> Result<Vec<Arg>> {
        self.nest()?;
        let mut args = Vec::new();
        while !self.eat(')') {
            let named = matches!(self.peek(), Some(Tok::Ident(_)))
                && self.peek_second() == Some(&Tok::Punct(':'));
            let name = if named {
                let (name, _) = self.ident("an argument name")?;
                self.pos += 1;
                Some(name)
            } else {
                None
            };
            let value = self.expr()?;
            args.push(Arg { name, value });
            if !self.eat(',') && self.peek() != Some(&Tok::Punct(')')) {
                return Err(self.expected("`,` or `)`"));
            }
        }
        self.depth -= 1;
        Ok(args)
    }

    fn expr(&mut self) -> Result<Expr> {
        let what = "a value (string, number, name, function call or list)";
        match self.peek().cloned() {
            Some(Tok::Str(text)) => {
                self.pos += 1;
                Ok(Expr::Str(text))
            }
            Some(Tok::Num(number)) => {
                self.pos += 1;
                Ok(Expr::Num(number))
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                if self.eat('(') {
                    self.args()?;
                    Ok(Expr::Call(name))
                } else {
                    Ok(Expr::Ident(name))
                }
            }
            Some(Tok::Punct('[')) => {
                self.pos += 1;
                self.array()
            }
            _ => Err(self.expected(what)),
        }
    }

    /// List items after an opening `[`, up to and including the closing `]`.
    fn array(&mut self) -> Result<Expr> {
        self.nest()?;
        let mut items = Vec::new();
        while !self.eat(']') {
            items.push(self.expr()?);
            if !self.eat(',') && self.peek() != Some(&Tok::Punct(']')) {
                return Err(self.expected("`,` or `]`"));
            }
        }
        self.depth -= 1;
        Ok(Expr::Array(items))
    }

    fn nest(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(schema_error(
                self.line(),
                format!("arguments are nested more than {MAX_NESTING} levels deep"),
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// From syntax tree to catalog
// ---------------------------------------------------------------------------------------------

fn provider(datasources: &[ConfigBlock]) -> Result<Provider> {
    match datasources {
        [] => Ok(Provider::PostgreSql),
        [datasource] => datasource_provider(datasource),
        [_, second, ..] => Err(schema_error(
            second.line,
            "a schema may have only one datasource",
        )),
    }
}

fn datasource_provider(datasource: &ConfigBlock) -> Result<Provider> {
    let setting = datasource
        .settings
        .iter()
        .find(|s| s.key == "provider")
        .ok_or_else(|| {
            schema_error(
                datasource.line,
                format!("datasource `{}` has no provider", datasource.name),
            )
        })?;
    match &setting.value {
        Expr::Str(name) if name == "postgresql" || name == "postgres" => Ok(Provider::PostgreSql),
        Expr::Str(name) if name == "mysql" => Ok(Provider::MySql),
        Expr::Str(name) => Err(schema_error(
            setting.line,
            format!("provider `{name}` is not supported: Eddy reads postgresql and mysql schemas"),
        )),
        _ => Err(schema_error(
            setting.line,
            "expected the provider as a string, e.g. provider = \"postgresql\"",
        )),
    }
}

/// Prisma's scalar types; `Debug` prints their Prisma names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar {
    String,
    Boolean,
    Int,
    BigInt,
    Float,
    Decimal,
    DateTime,
    Json,
    Bytes,
}

impl Scalar {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "String" => Scalar::String,
            "Boolean" => Scalar::Boolean,
            "Int" => Scalar::Int,
            "BigInt" => Scalar::BigInt,
            "Float" => Scalar::Float,
            "Decimal" => Scalar::Decimal,
            "DateTime" => Scalar::DateTime,
            "Json" => Scalar::Json,
            "Bytes" => Scalar::Bytes,
            _ => return None,
        })
    }

    /// The type of Prisma's default native type, which is the same on PostgreSQL and MySQL:
    /// `decimal(65,30)` for Decimal and millisecond timestamps (`timestamp(3)`/`datetime(3)`).
    fn default_type(self) -> DataType {
        match self {
            Scalar::String | Scalar::Json => DataType::Utf8,
            Scalar::Boolean => DataType::Boolean,
            Scalar::Int => DataType::Int32,
            Scalar::BigInt => DataType::Int64,
            Scalar::Float => DataType::Float64,
            Scalar::Decimal => DataType::Decimal256(65, 30),
            Scalar::DateTime => DataType::Timestamp(TimeUnit::Millisecond, None),
            Scalar::Bytes => DataType::Binary,
        }
    }
}

/// What a name used as a field type refers to, besides scalars.
struct Scope<'a> {
    provider: Provider,
    /// Models and views: a field of one of these types is a relation, not a column.
    relations: HashSet<&'a str>,
    enums: HashSet<&'a str>,
    composites: HashSet<&'a str>,
}

impl<'a> Scope<'a> {
    fn new(document: &'a Document, provider: Provider) -> Result<Self> {
        let mut scope = Scope {
            provider,
            relations: HashSet::new(),
            enums: HashSet::new(),
            composites: HashSet::new(),
        };
        let mut seen = HashSet::new();
        for (name, line) in &document.enums {
            declare(&mut seen, name, *line)?;
            scope.enums.insert(name.as_str());
        }
        for block in &document.blocks {
            declare(&mut seen, &block.name, block.line)?;
            match block.kind {
                BlockKind::Model | BlockKind::View => scope.relations.insert(&block.name),
                BlockKind::Type => scope.composites.insert(&block.name),
            };
        }
        Ok(scope)
    }

    fn table(&self, model: &Block) -> Result<TableDef> {
        check_attrs(&model.attrs, BLOCK_ATTRIBUTES)?;
        let mut columns: Vec<ColumnDef> = Vec::new();
        for (i, field) in model.fields.iter().enumerate() {
            check_attrs(&field.attrs, FIELD_ATTRIBUTES)?;
            if model.fields[..i].iter().any(|f| f.name == field.name) {
                let message = format!(
                    "field `{}` is defined twice in `{}`",
                    field.name, model.name
                );
                return Err(schema_error(field.line, message));
            }
            let Some(column) = self.column(model, field)? else {
                continue;
            };
            if columns.iter().any(|c| c.name == column.name) {
                let message = format!(
                    "column `{}` is defined twice in `{}`",
                    column.name, model.name
                );
                return Err(schema_error(field.line, message));
            }
            columns.push(column);
        }
        Ok(TableDef {
            name: mapped_name(&model.attrs, &model.name)?,
            model: model.name.clone(),
            primary_key: primary_key(model, &columns)?,
            columns,
        })
    }

    /// The field's column, or `None` when the field is not stored in this table.
    fn column(&self, model: &Block, field: &FieldDecl) -> Result<Option<ColumnDef>> {
        if find_attr(&field.attrs, "ignore").is_some() {
            return Ok(None);
        }
        let Some(element) = self.element_type(model, field)? else {
            return Ok(None);
        };
        let data_type = match field.arity {
            Arity::List => self.list(model, field, element)?,
            Arity::Required | Arity::Optional => element,
        };
        Ok(Some(ColumnDef {
            name: mapped_name(&field.attrs, &field.name)?,
            field: field.name.clone(),
            data_type,
            // Prisma cannot mark a list optional, but the array column behind it can be NULL.
            nullable: field.arity != Arity::Required,
        }))
    }

    /// The type of one value of the field, or `None` for a relation field.
    fn element_type(&self, model: &Block, field: &FieldDecl) -> Result<Option<DataType>> {
        let unsupported = |message: String| unsupported(model, field, message);
        let name = match &field.ty {
            TypeName::Named(name) => name.as_str(),
            TypeName::Unsupported(db_type) => {
                let message = format!("type Unsupported(\"{db_type}\") is not supported");
                return Err(unsupported(message));
            }
        };
        if self.relations.contains(name) {
            return Ok(None);
        }
        let native = native_attr(field)?;
        if self.enums.contains(name) {
            return match native {
                None => Ok(Some(DataType::Utf8)),
                Some(native) => Err(unsupported(format!(
                    "native type {} is not supported for enum `{name}`",
                    native.label
                ))),
            };
        }
        if self.composites.contains(name) {
            return Err(unsupported(format!(
                "composite type `{name}` is not supported"
            )));
        }
        let scalar =
            Scalar::from_name(name).ok_or_else(|| unsupported(format!("unknown type `{name}`")))?;
        match native {
            None => Ok(Some(scalar.default_type())),
            Some(native) => native_type(self.provider, scalar, &native)
                .map(Some)
                .map_err(unsupported),
        }
    }

    fn list(&self, model: &Block, field: &FieldDecl, element: DataType) -> Result<DataType> {
        match self.provider {
            Provider::PostgreSql => Ok(DataType::List(Arc::new(Field::new("item", element, true)))),
            Provider::MySql => Err(unsupported(
                model,
                field,
                "scalar lists are not supported on MySQL".to_string(),
            )),
        }
    }
}

fn unsupported(model: &Block, field: &FieldDecl, message: String) -> Error {
    Error::Unsupported {
        model: model.name.clone(),
        field: field.name.clone(),
        message,
    }
}

/// Records a model, view, type or enum name; Prisma gives all of them one namespace.
fn declare<'a>(seen: &mut HashSet<&'a str>, name: &'a str, line: usize) -> Result<()> {
    if Scalar::from_name(name).is_some() || name == "Unsupported" {
        return Err(schema_error(
            line,
            format!("`{name}` is a built-in type name"),
        ));
    }
    if !seen.insert(name) {
        return Err(schema_error(line, format!("`{name}` is defined twice")));
    }
    Ok(())
}

/// Attributes Prisma defines; an unknown one is most likely a typo (`@Id`) that would
/// otherwise silently change the table.
const FIELD_ATTRIBUTES: &[&str] = &[
    "id",
    "map",
    "default",
    "unique",
    "updatedAt",
    "relation",
    "ignore",
    "shardKey",
];
const BLOCK_ATTRIBUTES: &[&str] = &[
    "id", "map", "unique", "index", "schema", "ignore", "fulltext", "shardKey",
];

fn check_attrs(attrs: &[Attribute], known: &[&str]) -> Result<()> {
    let is_known = |a: &&Attribute| {
        known.contains(&a.name.as_str()) || (a.sigil == "@" && a.name.contains('.'))
    };
    match attrs.iter().find(|a| !is_known(a)) {
        None => Ok(()),
        Some(attr) => Err(schema_error(
            attr.line,
            format!("unknown attribute `{}`", attr.label()),
        )),
    }
}

/// The database name given by `@map`/`@@map`, else the Prisma name.
fn mapped_name(attrs: &[Attribute], prisma_name: &str) -> Result<String> {
    let Some(attr) = find_attr(attrs, "map") else {
        return Ok(prisma_name.to_string());
    };
    match attr.arg("name") {
        Some(Expr::Str(name)) => Ok(name.clone()),
        _ => Err(schema_error(
            attr.line,
            format!("expected a string argument to `{}`", attr.label()),
        )),
    }
}

fn primary_key(model: &Block, columns: &[ColumnDef]) -> Result<Vec<usize>> {
    let mut ids: Vec<(Vec<&str>, usize)> = model
        .fields
        .iter()
        .filter(|f| find_attr(&f.attrs, "id").is_some())
        .map(|f| (vec![f.name.as_str()], f.line))
        .collect();
    for attr in model.attrs.iter().filter(|a| a.name == "id") {
        ids.push((id_fields(attr)?, attr.line));
    }
    match ids.as_slice() {
        [] => Ok(Vec::new()),
        [(fields, line)] => fields
            .iter()
            .map(|name| id_column(model, columns, name, *line))
            .collect(),
        [_, (_, line), ..] => Err(schema_error(
            *line,
            format!("model `{}` has more than one id", model.name),
        )),
    }
}

fn id_column(model: &Block, columns: &[ColumnDef], field: &str, line: usize) -> Result<usize> {
    columns
        .iter()
        .position(|c| c.field == field)
        .ok_or_else(|| {
            let message = format!(
                "the id of model `{}` names `{field}`, which is not a column of it",
                model.name
            );
            schema_error(line, message)
        })
}

/// The Prisma field names of a `@@id`, in its order; sort options such as `a(sort: Desc)`
/// do not change which columns form the key.
fn id_fields(attr: &Attribute) -> Result<Vec<&str>> {
    let invalid = || {
        schema_error(
            attr.line,
            "expected `@@id([field, ...])` with at least one field",
        )
    };
    let Some(Expr::Array(items)) = attr.arg("fields") else {
        return Err(invalid());
    };
    let names = items
        .iter()
        .map(|item| match item {
            Expr::Ident(name) | Expr::Call(name) => Ok(name.as_str()),
            _ => Err(invalid()),
        })
        .collect::<Result<Vec<_>>>()?;
    if names.is_empty() {
        return Err(invalid());
    }
    Ok(names)
}

// ---------------------------------------------------------------------------------------------
// Native types
// ---------------------------------------------------------------------------------------------

/// A `@db.Name(args)` attribute.
struct Native<'a> {
    /// As written, e.g. `@db.VarChar`, for messages.
    label: String,
    /// The part after the datasource name, e.g. `VarChar`.
    name: &'a str,
    args: Vec<u32>,
}

fn native_attr(field: &FieldDecl) -> Result<Option<Native<'_>>> {
    let mut natives = field.attrs.iter().filter_map(|a| {
        let (_, name) = a.name.split_once('.')?;
        Some((a, name))
    });
    let Some((attr, name)) = natives.next() else {
        return Ok(None);
    };
    if let Some((second, _)) = natives.next() {
        let message = format!("field `{}` has more than one native type", field.name);
        return Err(schema_error(second.line, message));
    }
    let args = attr
        .args
        .iter()
        .map(|arg| match (&arg.name, &arg.value) {
            (None, Expr::Num(number)) => number.parse::<u32>().ok(),
            _ => None,
        })
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| {
            let message = format!("arguments of `{}` must be whole numbers", attr.label());
            schema_error(attr.line, message)
        })?;
    Ok(Some(Native {
        label: attr.label(),
        name,
        args,
    }))
}

/// The type of a native type override, or a message saying why it cannot be used.
fn native_type(provider: Provider, scalar: Scalar, native: &Native) -> Result<DataType, String> {
    let mapped = match provider {
        Provider::PostgreSql => postgres_native(scalar, native),
        Provider::MySql => mysql_native(scalar, native),
    };
    mapped.unwrap_or_else(|| {
        Err(format!(
            "native type {} is not supported for {scalar:?}",
            native.label
        ))
    })
}

/// `None` when the native type does not exist for this scalar on PostgreSQL.
fn postgres_native(scalar: Scalar, native: &Native) -> Option<Result<DataType, String>> {
    use Scalar::*;
    Some(match (scalar, native.name) {
        (String, "Text" | "Uuid" | "Xml" | "Inet" | "Citext") => simple(native, DataType::Utf8),
        (String, "VarChar" | "Char" | "Bit" | "VarBit") => sized(native, DataType::Utf8),
        (Boolean, "Boolean") => simple(native, DataType::Boolean),
        (Int, "Integer") => simple(native, DataType::Int32),
        (Int, "SmallInt") => simple(native, DataType::Int16),
        (Int, "Oid") => simple(native, DataType::Int64),
        (BigInt, "BigInt") => simple(native, DataType::Int64),
        (Float, "DoublePrecision") => simple(native, DataType::Float64),
        (Float, "Real") => simple(native, DataType::Float32),
        (Decimal, "Decimal") => decimal_args(native, Scalar::Decimal.default_type()),
        (Decimal, "Money") => simple(native, DataType::Decimal128(19, 2)),
        (DateTime, "Timestamp") => precision(native, 6).map(|p| timestamp(p, false)),
        (DateTime, "Timestamptz") => precision(native, 6).map(|p| timestamp(p, true)),
        (DateTime, "Date") => simple(native, DataType::Date32),
        (DateTime, "Time") => precision(native, 6).map(time),
        (DateTime, "Timetz") => precision(native, 6).map(|_| DataType::Utf8),
        (Json, "Json" | "JsonB") => simple(native, DataType::Utf8),
        (Bytes, "ByteA") => simple(native, DataType::Binary),
        _ => return None,
    })
}

/// `None` when the native type does not exist for this scalar on MySQL.
///
/// Where MySQL's own default differs from PostgreSQL's, a native type without arguments
/// takes MySQL's: `DATETIME`/`TIME`/`TIMESTAMP` have precision 0 and `DECIMAL` is
/// `DECIMAL(10,0)`.
fn mysql_native(scalar: Scalar, native: &Native) -> Option<Result<DataType, String>> {
    use Scalar::*;
    Some(match (scalar, native.name) {
        (String, "VarChar" | "Char") => sized(native, DataType::Utf8),
        (String, "Text" | "TinyText" | "MediumText" | "LongText") => simple(native, DataType::Utf8),
        (Boolean, "TinyInt" | "Bit") if native.args == [1] => Ok(DataType::Boolean),
        (Int, "Int" | "MediumInt" | "UnsignedSmallInt" | "UnsignedMediumInt" | "Year") => {
            simple(native, DataType::Int32)
        }
        (Int, "SmallInt" | "TinyInt" | "UnsignedTinyInt") => simple(native, DataType::Int16),
        (Int, "UnsignedInt") => simple(native, DataType::Int64),
        (BigInt, "BigInt") => simple(native, DataType::Int64),
        (BigInt, "UnsignedBigInt") => simple(native, DataType::Decimal128(20, 0)),
        (Float, "Double") => simple(native, DataType::Float64),
        (Float, "Float") => simple(native, DataType::Float32),
        (Decimal, "Decimal") => decimal_args(native, DataType::Decimal128(10, 0)),
        (DateTime, "DateTime") => precision(native, 0).map(|p| timestamp(p, false)),
        (DateTime, "Timestamp") => precision(native, 0).map(|p| timestamp(p, true)),
        (DateTime, "Date") => simple(native, DataType::Date32),
        (DateTime, "Time") => precision(native, 0).map(time),
        (Json, "Json") => simple(native, DataType::Utf8),
        (Bytes, "Blob" | "LongBlob" | "MediumBlob" | "TinyBlob") => {
            simple(native, DataType::Binary)
        }
        (Bytes, "Binary" | "VarBinary" | "Bit") => sized(native, DataType::Binary),
        _ => return None,
    })
}

fn at_most(native: &Native, max: usize) -> Result<(), String> {
    if native.args.len() <= max {
        return Ok(());
    }
    let allowed = match max {
        0 => "no arguments".to_string(),
        1 => "at most 1 argument".to_string(),
        n => format!("at most {n} arguments"),
    };
    Err(format!(
        "native type {} takes {allowed}, found {}",
        native.label,
        native.args.len()
    ))
}

/// A native type without arguments.
fn simple(native: &Native, data_type: DataType) -> Result<DataType, String> {
    at_most(native, 0).map(|()| data_type)
}

/// A native type with an optional length that does not change the Arrow type.
fn sized(native: &Native, data_type: DataType) -> Result<DataType, String> {
    at_most(native, 1).map(|()| data_type)
}

/// The fractional-second precision of a time type; it decides the Arrow unit.
fn precision(native: &Native, default: u32) -> Result<u32, String> {
    at_most(native, 1)?;
    match native.args.first().copied().unwrap_or(default) {
        p if p <= 6 => Ok(p),
        p => Err(format!(
            "precision of {} must be at most 6, found {p}",
            native.label
        )),
    }
}

fn decimal_args(native: &Native, default: DataType) -> Result<DataType, String> {
    at_most(native, 2)?;
    match native.args.as_slice() {
        [] => Ok(default),
        [precision] => decimal(native, *precision, 0),
        [precision, scale, ..] => decimal(native, *precision, *scale),
    }
}

/// Arrow's narrowest decimal that holds the precision.
fn decimal(native: &Native, precision: u32, scale: u32) -> Result<DataType, String> {
    let out_of_range = || {
        format!(
            "{}({precision}, {scale}) is out of range: precision must be 1 to 76 and scale at most the precision",
            native.label
        )
    };
    let p = u8::try_from(precision).map_err(|_| out_of_range())?;
    let s = i8::try_from(scale).map_err(|_| out_of_range())?;
    match p {
        1..=38 if scale <= precision => Ok(DataType::Decimal128(p, s)),
        39..=76 if scale <= precision => Ok(DataType::Decimal256(p, s)),
        _ => Err(out_of_range()),
    }
}

/// Precision 0 to 3 fits milliseconds (what Debezium sends for them); 4 to 6 needs microseconds.
fn timestamp(precision: u32, utc: bool) -> DataType {
    let unit = if precision <= 3 {
        TimeUnit::Millisecond
    } else {
        TimeUnit::Microsecond
    };
    DataType::Timestamp(unit, utc.then(|| "UTC".into()))
}

fn time(precision: u32) -> DataType {
    if precision <= 3 {
        DataType::Time32(TimeUnit::Millisecond)
    } else {
        DataType::Time64(TimeUnit::Microsecond)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, field: &str, data_type: DataType, nullable: bool) -> ColumnDef {
        ColumnDef {
            name: name.to_string(),
            field: field.to_string(),
            data_type,
            nullable,
        }
    }

    fn list_of(data_type: DataType) -> DataType {
        DataType::List(Arc::new(Field::new("item", data_type, true)))
    }

    fn millis(utc: bool) -> DataType {
        DataType::Timestamp(TimeUnit::Millisecond, utc.then(|| "UTC".into()))
    }

    fn micros(utc: bool) -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, utc.then(|| "UTC".into()))
    }

    /// The type of field `f` declared as `f {declaration}` on the given provider.
    fn field_type(provider: &str, declaration: &str) -> Result<DataType> {
        let source = format!(
            "datasource db {{\n  provider = \"{provider}\"\n}}\n\nmodel T {{\n  f {declaration}\n}}\n"
        );
        let catalog = parse(&source)?;
        Ok(catalog.tables[0].columns[0].data_type.clone())
    }

    fn schema_failure(source: &str) -> (usize, String) {
        match parse(source) {
            Err(Error::Schema { line, message }) => (line, message),
            other => panic!("expected a schema error, got {other:?}"),
        }
    }

    fn unsupported_failure(source: &str) -> (String, String, String) {
        match parse(source) {
            Err(Error::Unsupported {
                model,
                field,
                message,
            }) => (model, field, message),
            other => panic!("expected an unsupported error, got {other:?}"),
        }
    }

    fn unsupported_type(provider: &str, declaration: &str) -> String {
        match field_type(provider, declaration) {
            Err(Error::Unsupported { message, .. }) => message,
            other => panic!("expected `{declaration}` to be unsupported, got {other:?}"),
        }
    }

    const TEST_DATABASE: &str = r#"
datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

enum mood {
  sad
  ok
  happy
}

model User {
  id         Int      @id @default(autoincrement())
  email      String
  country    String?
  created_at DateTime @default(now()) @db.Timestamptz(6)
  orders     Order[]

  @@map("users")
}

model Order {
  id         BigInt    @id @default(autoincrement())
  user_id    Int?
  amount     Decimal?  @db.Decimal(12, 2)
  status     String?
  created_at DateTime? @db.Timestamp(6)
  meta       Json?
  user       User?     @relation(fields: [user_id], references: [id])

  @@map("orders")
}
"#;

    #[test]
    fn test_database_schema() {
        let expected = Catalog {
            provider: Provider::PostgreSql,
            tables: vec![
                TableDef {
                    name: "users".to_string(),
                    model: "User".to_string(),
                    columns: vec![
                        column("id", "id", DataType::Int32, false),
                        column("email", "email", DataType::Utf8, false),
                        column("country", "country", DataType::Utf8, true),
                        column("created_at", "created_at", micros(true), false),
                    ],
                    primary_key: vec![0],
                },
                TableDef {
                    name: "orders".to_string(),
                    model: "Order".to_string(),
                    columns: vec![
                        column("id", "id", DataType::Int64, false),
                        column("user_id", "user_id", DataType::Int32, true),
                        column("amount", "amount", DataType::Decimal128(12, 2), true),
                        column("status", "status", DataType::Utf8, true),
                        column("created_at", "created_at", micros(false), true),
                        column("meta", "meta", DataType::Utf8, true),
                    ],
                    primary_key: vec![0],
                },
            ],
        };
        assert_eq!(parse(TEST_DATABASE).unwrap(), expected);
    }

    const BLOG: &str = r#"
// Blog schema read by the analytics job.
generator client {
  provider        = "prisma-client-js"
  previewFeatures = ["multiSchema", "views"] // trailing comment
  output          = "../node_modules/.prisma/client"
}

datasource db {
  provider   = "postgresql" // the only setting Eddy reads
  url        = env("DATABASE_URL")
  schemas    = ["public", "auth"]
  extensions = [pgcrypto, postgis(version: "3.4")]
}

/// Roles a user may have.
enum Role {
  USER
  ADMIN @map("admin")

  @@map("user_role")
  @@schema("public")
}

/// A registered user.
model User {
  id        String   @id @default(dbgenerated("gen_random_uuid()")) @db.Uuid
  email     String   @unique @map("email_address") // login name
  name      String?  @default("// not a comment")
  role      Role     @default(USER)
  tags      String[]
  scores    Int[]    @default([])
  posts     Post[]
  profile   Profile?
  legacy    Int?     @ignore
  createdAt DateTime @default(now()) @map("created_at")
  updatedAt DateTime @updatedAt @map("updated_at")

  @@map("users")
  @@index([email, createdAt(sort: Desc)], type: BTree)
  @@schema("public")
}

model Profile {
  userId String @id @db.Uuid
  bio    String @db.Text
  user   User   @relation(fields: [userId], references: [id], onDelete: Cascade)

  @@schema("auth")
}

model Post {
  authorId   String              @db.Uuid
  slug       String              @db.VarChar(200)
  title      String
  published  Boolean             @default(false)
  author     User                @relation(
    fields: [authorId],
    references: [id]
  )
  categories CategoriesOnPosts[]

  @@id(fields: [slug, authorId], map: "post_pk")
  @@unique([title, authorId])
  @@schema("public")
}

model Category {
  id    Int                 @id @default(autoincrement())
  name  String              @unique
  posts CategoriesOnPosts[]
}

model CategoriesOnPosts {
  postSlug     String
  postAuthorId String   @db.Uuid
  categoryId   Int
  post         Post     @relation(fields: [postSlug, postAuthorId], references: [slug, authorId])
  category     Category @relation(fields: [categoryId], references: [id])
  assignedAt   DateTime @default(now()) @db.Timestamptz(3)

  @@id([categoryId(sort: Desc), postSlug, postAuthorId])
  @@map("post_categories")
}

/// Kept in the database but not replicated.
model AuditLog {
  id Int @id

  @@ignore
}

model PageView {
  path String
  at   DateTime @db.Timestamp(0)

  @@unique([path, at])
}

view ActiveUser {
  id    String @unique
  email String
}
"#;

    #[test]
    fn realistic_schema() {
        let catalog = parse(BLOG).unwrap();
        assert_eq!(catalog.provider, Provider::PostgreSql);
        let names: Vec<&str> = catalog.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "users",
                "Profile",
                "Post",
                "Category",
                "post_categories",
                "PageView"
            ]
        );
        let expected = [
            TableDef {
                name: "users".to_string(),
                model: "User".to_string(),
                columns: vec![
                    column("id", "id", DataType::Utf8, false),
                    column("email_address", "email", DataType::Utf8, false),
                    column("name", "name", DataType::Utf8, true),
                    column("role", "role", DataType::Utf8, false),
                    column("tags", "tags", list_of(DataType::Utf8), true),
                    column("scores", "scores", list_of(DataType::Int32), true),
                    column("created_at", "createdAt", millis(false), false),
                    column("updated_at", "updatedAt", millis(false), false),
                ],
                primary_key: vec![0],
            },
            TableDef {
                name: "Profile".to_string(),
                model: "Profile".to_string(),
                columns: vec![
                    column("userId", "userId", DataType::Utf8, false),
                    column("bio", "bio", DataType::Utf8, false),
                ],
                primary_key: vec![0],
            },
            TableDef {
                name: "Post".to_string(),
                model: "Post".to_string(),
                columns: vec![
                    column("authorId", "authorId", DataType::Utf8, false),
                    column("slug", "slug", DataType::Utf8, false),
                    column("title", "title", DataType::Utf8, false),
                    column("published", "published", DataType::Boolean, false),
                ],
                primary_key: vec![1, 0],
            },
            TableDef {
                name: "Category".to_string(),
                model: "Category".to_string(),
                columns: vec![
                    column("id", "id", DataType::Int32, false),
                    column("name", "name", DataType::Utf8, false),
                ],
                primary_key: vec![0],
            },
            TableDef {
                name: "post_categories".to_string(),
                model: "CategoriesOnPosts".to_string(),
                columns: vec![
                    column("postSlug", "postSlug", DataType::Utf8, false),
                    column("postAuthorId", "postAuthorId", DataType::Utf8, false),
                    column("categoryId", "categoryId", DataType::Int32, false),
                    column("assignedAt", "assignedAt", millis(true), false),
                ],
                primary_key: vec![2, 0, 1],
            },
            TableDef {
                name: "PageView".to_string(),
                model: "PageView".to_string(),
                columns: vec![
                    column("path", "path", DataType::Utf8, false),
                    column("at", "at", millis(false), false),
                ],
                primary_key: vec![],
            },
        ];
        assert_eq!(catalog.tables, expected);
    }

    #[test]
    fn every_prefix_of_a_schema_parses_or_fails_without_panicking() {
        for (end, _) in BLOG.char_indices() {
            let _ = parse(&BLOG[..end]);
        }
    }

    #[test]
    fn deep_nesting_is_a_schema_error() {
        let source = format!("model T {{\n  id Int @default({})\n}}", "[".repeat(10_000));
        let (line, message) = schema_failure(&source);
        assert_eq!(line, 2);
        assert_eq!(message, "arguments are nested more than 64 levels deep");
    }

    const SCALARS: &str = "
model Scalars {
  s  String
  b  Boolean
  i  Int
  bi BigInt
  f  Float
  d  Decimal
  dt DateTime
  j  Json
  by Bytes
  o  Int?
}
";

    fn scalar_columns() -> Vec<ColumnDef> {
        vec![
            column("s", "s", DataType::Utf8, false),
            column("b", "b", DataType::Boolean, false),
            column("i", "i", DataType::Int32, false),
            column("bi", "bi", DataType::Int64, false),
            column("f", "f", DataType::Float64, false),
            column("d", "d", DataType::Decimal256(65, 30), false),
            column("dt", "dt", millis(false), false),
            column("j", "j", DataType::Utf8, false),
            column("by", "by", DataType::Binary, false),
            column("o", "o", DataType::Int32, true),
        ]
    }

    #[test]
    fn default_types_on_postgresql() {
        let source = format!("datasource db {{\n  provider = \"postgresql\"\n}}\n{SCALARS}");
        let catalog = parse(&source).unwrap();
        assert_eq!(catalog.provider, Provider::PostgreSql);
        assert_eq!(catalog.tables[0].columns, scalar_columns());
        assert_eq!(catalog.tables[0].primary_key, Vec::<usize>::new());
    }

    #[test]
    fn default_types_on_mysql() {
        let source = format!("datasource db {{\n  provider = \"mysql\"\n}}\n{SCALARS}");
        let catalog = parse(&source).unwrap();
        assert_eq!(catalog.provider, Provider::MySql);
        assert_eq!(catalog.tables[0].columns, scalar_columns());
    }

    #[test]
    fn provider_postgres_alias_and_missing_datasource_mean_postgresql() {
        let alias = format!("datasource db {{\n  provider = \"postgres\"\n}}\n{SCALARS}");
        assert_eq!(parse(&alias).unwrap().provider, Provider::PostgreSql);
        assert_eq!(parse(SCALARS).unwrap().provider, Provider::PostgreSql);
        assert_eq!(
            parse("").unwrap(),
            Catalog {
                provider: Provider::PostgreSql,
                tables: vec![]
            }
        );
    }

    #[test]
    fn postgresql_native_types() {
        let cases = [
            ("String @db.Text", DataType::Utf8),
            ("String @db.VarChar(255)", DataType::Utf8),
            ("String @db.VarChar", DataType::Utf8),
            ("String @db.Char(2)", DataType::Utf8),
            ("String @db.Uuid", DataType::Utf8),
            ("String @db.Xml", DataType::Utf8),
            ("String @db.Inet", DataType::Utf8),
            ("String @db.Citext", DataType::Utf8),
            ("String @db.Bit(3)", DataType::Utf8),
            ("String @db.VarBit", DataType::Utf8),
            ("Boolean @db.Boolean", DataType::Boolean),
            ("Int @db.Integer", DataType::Int32),
            ("Int @db.SmallInt", DataType::Int16),
            ("Int @db.Oid", DataType::Int64),
            ("BigInt @db.BigInt", DataType::Int64),
            ("Float @db.DoublePrecision", DataType::Float64),
            ("Float @db.Real", DataType::Float32),
            ("Decimal @db.Decimal(10, 2)", DataType::Decimal128(10, 2)),
            ("Decimal @db.Decimal(38, 10)", DataType::Decimal128(38, 10)),
            ("Decimal @db.Decimal(39, 4)", DataType::Decimal256(39, 4)),
            ("Decimal @db.Decimal(7)", DataType::Decimal128(7, 0)),
            ("Decimal @db.Decimal", DataType::Decimal256(65, 30)),
            ("Decimal @db.Money", DataType::Decimal128(19, 2)),
            ("DateTime @db.Timestamp(0)", millis(false)),
            ("DateTime @db.Timestamp(3)", millis(false)),
            ("DateTime @db.Timestamp(4)", micros(false)),
            ("DateTime @db.Timestamp", micros(false)),
            ("DateTime @db.Timestamptz(3)", millis(true)),
            ("DateTime @db.Timestamptz(6)", micros(true)),
            ("DateTime @db.Timestamptz", micros(true)),
            ("DateTime @db.Date", DataType::Date32),
            (
                "DateTime @db.Time(3)",
                DataType::Time32(TimeUnit::Millisecond),
            ),
            (
                "DateTime @db.Time(6)",
                DataType::Time64(TimeUnit::Microsecond),
            ),
            ("DateTime @db.Time", DataType::Time64(TimeUnit::Microsecond)),
            ("DateTime @db.Timetz", DataType::Utf8),
            ("DateTime @db.Timetz(2)", DataType::Utf8),
            ("Json @db.Json", DataType::Utf8),
            ("Json @db.JsonB", DataType::Utf8),
            ("Bytes @db.ByteA", DataType::Binary),
        ];
        for (declaration, expected) in cases {
            let actual = field_type("postgresql", declaration).unwrap();
            assert_eq!(actual, expected, "{declaration}");
        }
    }

    #[test]
    fn mysql_native_types() {
        let cases = [
            ("String @db.VarChar(191)", DataType::Utf8),
            ("String @db.Text", DataType::Utf8),
            ("String @db.Char(10)", DataType::Utf8),
            ("String @db.TinyText", DataType::Utf8),
            ("String @db.MediumText", DataType::Utf8),
            ("String @db.LongText", DataType::Utf8),
            ("Boolean @db.TinyInt(1)", DataType::Boolean),
            ("Boolean @db.Bit(1)", DataType::Boolean),
            ("Int @db.Int", DataType::Int32),
            ("Int @db.SmallInt", DataType::Int16),
            ("Int @db.TinyInt", DataType::Int16),
            ("Int @db.MediumInt", DataType::Int32),
            ("Int @db.UnsignedInt", DataType::Int64),
            ("Int @db.UnsignedSmallInt", DataType::Int32),
            ("Int @db.UnsignedTinyInt", DataType::Int16),
            ("Int @db.UnsignedMediumInt", DataType::Int32),
            ("Int @db.Year", DataType::Int32),
            ("BigInt @db.BigInt", DataType::Int64),
            ("BigInt @db.UnsignedBigInt", DataType::Decimal128(20, 0)),
            ("Float @db.Double", DataType::Float64),
            ("Float @db.Float", DataType::Float32),
            ("Decimal @db.Decimal(10, 2)", DataType::Decimal128(10, 2)),
            ("Decimal @db.Decimal(65, 30)", DataType::Decimal256(65, 30)),
            ("Decimal @db.Decimal(12)", DataType::Decimal128(12, 0)),
            ("Decimal @db.Decimal", DataType::Decimal128(10, 0)),
            ("DateTime @db.DateTime(3)", millis(false)),
            ("DateTime @db.DateTime(6)", micros(false)),
            ("DateTime @db.DateTime", millis(false)),
            ("DateTime @db.Timestamp(3)", millis(true)),
            ("DateTime @db.Timestamp(6)", micros(true)),
            ("DateTime @db.Timestamp", millis(true)),
            ("DateTime @db.Date", DataType::Date32),
            (
                "DateTime @db.Time(2)",
                DataType::Time32(TimeUnit::Millisecond),
            ),
            (
                "DateTime @db.Time(5)",
                DataType::Time64(TimeUnit::Microsecond),
            ),
            ("DateTime @db.Time", DataType::Time32(TimeUnit::Millisecond)),
            ("Json @db.Json", DataType::Utf8),
            ("Bytes @db.Blob", DataType::Binary),
            ("Bytes @db.LongBlob", DataType::Binary),
            ("Bytes @db.MediumBlob", DataType::Binary),
            ("Bytes @db.TinyBlob", DataType::Binary),
            ("Bytes @db.Binary(16)", DataType::Binary),
            ("Bytes @db.VarBinary(255)", DataType::Binary),
            ("Bytes @db.Bit(8)", DataType::Binary),
        ];
        for (declaration, expected) in cases {
            let actual = field_type("mysql", declaration).unwrap();
            assert_eq!(actual, expected, "{declaration}");
        }
    }

    #[test]
    fn native_type_prefix_is_the_datasource_name() {
        let source = "datasource pg {\n  provider = \"postgresql\"\n}\nmodel T {\n  id String @id @pg.Uuid\n  at DateTime @pg.Timestamptz(6)\n}\n";
        let columns = &parse(source).unwrap().tables[0].columns;
        assert_eq!(columns[0].data_type, DataType::Utf8);
        assert_eq!(columns[1].data_type, micros(true));
    }

    #[test]
    fn native_types_that_do_not_apply_are_unsupported() {
        let cases = [
            (
                "postgresql",
                "Int @db.Foo",
                "native type @db.Foo is not supported for Int",
            ),
            (
                "postgresql",
                "Int @db.Int",
                "native type @db.Int is not supported for Int",
            ),
            (
                "postgresql",
                "String @db.Integer",
                "native type @db.Integer is not supported for String",
            ),
            (
                "postgresql",
                "Bytes @db.Blob",
                "native type @db.Blob is not supported for Bytes",
            ),
            (
                "mysql",
                "Json @db.JsonB",
                "native type @db.JsonB is not supported for Json",
            ),
            (
                "mysql",
                "Boolean @db.TinyInt(2)",
                "native type @db.TinyInt is not supported for Boolean",
            ),
            (
                "mysql",
                "Int @db.Integer",
                "native type @db.Integer is not supported for Int",
            ),
            (
                "postgresql",
                "String @db.Text(5)",
                "native type @db.Text takes no arguments, found 1",
            ),
            (
                "postgresql",
                "String @db.VarChar(5, 2)",
                "native type @db.VarChar takes at most 1 argument, found 2",
            ),
            (
                "postgresql",
                "Decimal @db.Decimal(5, 2, 1)",
                "native type @db.Decimal takes at most 2 arguments, found 3",
            ),
            (
                "postgresql",
                "DateTime @db.Timestamp(7)",
                "precision of @db.Timestamp must be at most 6, found 7",
            ),
            (
                "mysql",
                "DateTime @db.Time(9)",
                "precision of @db.Time must be at most 6, found 9",
            ),
            (
                "postgresql",
                "Decimal @db.Decimal(80, 2)",
                "@db.Decimal(80, 2) is out of range: precision must be 1 to 76 and scale at most the precision",
            ),
            (
                "postgresql",
                "Decimal @db.Decimal(5, 6)",
                "@db.Decimal(5, 6) is out of range: precision must be 1 to 76 and scale at most the precision",
            ),
            (
                "postgresql",
                "Decimal @db.Decimal(0)",
                "@db.Decimal(0, 0) is out of range: precision must be 1 to 76 and scale at most the precision",
            ),
            (
                "postgresql",
                "Decimal @db.Decimal(300, 2)",
                "@db.Decimal(300, 2) is out of range: precision must be 1 to 76 and scale at most the precision",
            ),
        ];
        for (provider, declaration, expected) in cases {
            assert_eq!(
                unsupported_type(provider, declaration),
                expected,
                "{declaration}"
            );
        }
    }

    #[test]
    fn native_type_on_enum_is_unsupported() {
        let source = "enum Color {\n  RED\n}\nmodel T {\n  c Color @db.Text\n}\n";
        let failure = unsupported_failure(source);
        let expected = (
            "T",
            "c",
            "native type @db.Text is not supported for enum `Color`",
        );
        assert_eq!(
            (failure.0.as_str(), failure.1.as_str(), failure.2.as_str()),
            expected
        );
    }

    #[test]
    fn native_type_arguments_must_be_numbers() {
        let source = "model T {\n  id Int @id\n  s String @db.VarChar(\"x\")\n}\n";
        let expected = (
            3,
            "arguments of `@db.VarChar` must be whole numbers".to_string(),
        );
        assert_eq!(schema_failure(source), expected);
        let negative = "model T {\n  s String @db.VarChar(-1)\n}\n";
        assert_eq!(schema_failure(negative).0, 2);
    }

    #[test]
    fn two_native_types_are_a_schema_error() {
        let source = "model T {\n  s String @db.Text\n    @db.Uuid\n}\n";
        let expected = (3, "field `s` has more than one native type".to_string());
        assert_eq!(schema_failure(source), expected);
    }

    #[test]
    fn unsupported_database_type_names_model_and_field() {
        let source = "model Document {\n  id     Int @id\n  search Unsupported(\"tsvector\")?\n}\n";
        let expected = (
            "Document".to_string(),
            "search".to_string(),
            "type Unsupported(\"tsvector\") is not supported".to_string(),
        );
        assert_eq!(unsupported_failure(source), expected);
    }

    #[test]
    fn ignored_unsupported_field_is_skipped() {
        let source =
            "model Document {\n  id     Int @id\n  search Unsupported(\"tsvector\")? @ignore\n}\n";
        let columns = &parse(source).unwrap().tables[0].columns;
        assert_eq!(columns, &vec![column("id", "id", DataType::Int32, false)]);
    }

    #[test]
    fn unknown_type_is_unsupported() {
        let source = "model Pet {\n  id    Int @id\n  owner Person\n}\n";
        let expected = (
            "Pet".to_string(),
            "owner".to_string(),
            "unknown type `Person`".to_string(),
        );
        assert_eq!(unsupported_failure(source), expected);
    }

    #[test]
    fn composite_type_is_unsupported_and_not_a_table() {
        let source =
            "type Address {\n  city String\n}\nmodel Shop {\n  id Int @id\n  address Address\n}\n";
        let expected = (
            "Shop".to_string(),
            "address".to_string(),
            "composite type `Address` is not supported".to_string(),
        );
        assert_eq!(unsupported_failure(source), expected);
        let unused = "type Address {\n  city String\n}\n";
        assert_eq!(parse(unused).unwrap().tables, vec![]);
    }

    #[test]
    fn lists_are_unsupported_on_mysql() {
        let expected = "scalar lists are not supported on MySQL";
        assert_eq!(unsupported_type("mysql", "Int[]"), expected);
    }

    #[test]
    fn unknown_providers_are_schema_errors() {
        for name in ["sqlite", "sqlserver", "mongodb", "cockroachdb"] {
            let source =
                format!("datasource db {{\n  provider = \"{name}\"\n  url = env(\"X\")\n}}\n");
            let message = format!(
                "provider `{name}` is not supported: Eddy reads postgresql and mysql schemas"
            );
            assert_eq!(schema_failure(&source), (2, message));
        }
    }

    #[test]
    fn datasource_errors() {
        let no_provider = "datasource db {\n  url = env(\"X\")\n}\n";
        let expected = (1, "datasource `db` has no provider".to_string());
        assert_eq!(schema_failure(no_provider), expected);
        let not_a_string = "datasource db {\n  provider = postgresql\n}\n";
        let expected = (
            2,
            "expected the provider as a string, e.g. provider = \"postgresql\"".to_string(),
        );
        assert_eq!(schema_failure(not_a_string), expected);
        let two = "datasource a {\n  provider = \"mysql\"\n}\ndatasource b {\n  provider = \"mysql\"\n}\n";
        let expected = (4, "a schema may have only one datasource".to_string());
        assert_eq!(schema_failure(two), expected);
    }

    #[test]
    fn syntax_errors_report_their_line() {
        let cases = [
            (
                "model User {\n  id Int @id\n  email String @default(\"x\"\n}\n",
                4,
                "expected `,` or `)`, found `}`",
            ),
            (
                "model User {\n  id Int @id\n  email\n  name String\n}\n",
                3,
                "expected a type after field `email` on the same line",
            ),
            (
                "model User {\n  id Int Int\n}\n",
                2,
                "expected an attribute (`@`) or a new line after field `id`, found `Int`",
            ),
            (
                "model User {\n  id Int @id\n",
                2,
                "expected a field name, a block attribute (`@@`) or `}`, found end of file",
            ),
            (
                "\n\nmodle User {\n}\n",
                3,
                "expected a block (`model`, `enum`, `datasource`, `generator`, `view` or `type`), found `modle`",
            ),
            (
                "model User {\n  id Int @id @default(\"unclosed)\n}\n",
                2,
                "unterminated string: expected `\"`",
            ),
            (
                "model User {\n  id Int @id\n  $x Int\n}\n",
                3,
                "unexpected character `$`",
            ),
            (
                "model User\n  id Int\n}\n",
                2,
                "expected `{` after `User`, found `id`",
            ),
            (
                "datasource db {\n  provider \"postgresql\"\n}\n",
                2,
                "expected `=` after `provider`, found string \"postgresql\"",
            ),
            (
                "model User {\n  id Int @\n}\n",
                3,
                "expected an attribute name after `@`, found `}`",
            ),
            (
                "model User {\n  id Int[\n}\n",
                3,
                "expected `]` after `[`, found `}`",
            ),
            (
                "enum Mood {\n  sad\n  = ok\n}\n",
                3,
                "expected an enum value, a block attribute (`@@`) or `}`, found `=`",
            ),
        ];
        for (source, line, message) in cases {
            assert_eq!(
                schema_failure(source),
                (line, message.to_string()),
                "{source}"
            );
        }
    }

    #[test]
    fn multi_line_attribute_arguments_parse() {
        let source = "model T {\n  id Int @id @default(\n    autoincrement()\n  )\n  name String @map(\n    \"full_name\"\n  )\n\n  @@index(\n    [name],\n    map: \"t_name\"\n  )\n}\n";
        let columns = &parse(source).unwrap().tables[0].columns;
        let expected = vec![
            column("id", "id", DataType::Int32, false),
            column("full_name", "name", DataType::Utf8, false),
        ];
        assert_eq!(columns, &expected);
    }

    #[test]
    fn ids_must_name_columns_once() {
        let relation_in_id = "model A {\n  id Int\n  b B @relation(fields: [id], references: [id])\n  @@id([b])\n}\nmodel B {\n  id Int @id\n  a A[]\n}\n";
        let expected = (
            4,
            "the id of model `A` names `b`, which is not a column of it".to_string(),
        );
        assert_eq!(schema_failure(relation_in_id), expected);
        let two_ids = "model A {\n  id Int @id\n  other Int\n  @@id([other])\n}\n";
        let expected = (4, "model `A` has more than one id".to_string());
        assert_eq!(schema_failure(two_ids), expected);
        let empty = "model A {\n  id Int\n  @@id([])\n}\n";
        let expected = (
            3,
            "expected `@@id([field, ...])` with at least one field".to_string(),
        );
        assert_eq!(schema_failure(empty), expected);
    }

    #[test]
    fn id_fields_follow_map() {
        let source = "model A {\n  tenant Int @map(\"tenant_id\")\n  key String\n  @@id(fields: [key, tenant])\n}\n";
        let table = &parse(source).unwrap().tables[0];
        assert_eq!(table.primary_key, vec![1, 0]);
        assert_eq!(table.columns[0].name, "tenant_id");
    }

    #[test]
    fn duplicates_and_unknown_attributes_are_schema_errors() {
        let cases = [
            ("model A {\n  id Int @Id\n}\n", 2, "unknown attribute `@Id`"),
            (
                "model A {\n  id Int\n  @@primary([id])\n}\n",
                3,
                "unknown attribute `@@primary`",
            ),
            (
                "model A {\n  id Int\n  id String\n}\n",
                3,
                "field `id` is defined twice in `A`",
            ),
            (
                "model A {\n  id Int\n  other Int @map(\"id\")\n}\n",
                3,
                "column `id` is defined twice in `A`",
            ),
            (
                "model A {\n  id Int\n}\nenum A {\n  X\n}\n",
                1,
                "`A` is defined twice",
            ),
            (
                "model A {\n  id Int\n}\nmodel B {\n  id Int\n  @@map(\"A\")\n}\n",
                4,
                "table `A` is defined twice",
            ),
            (
                "model String {\n  id Int\n}\n",
                1,
                "`String` is a built-in type name",
            ),
            (
                "model A {\n  id Int @map(name)\n}\n",
                2,
                "expected a string argument to `@map`",
            ),
        ];
        for (source, line, message) in cases {
            assert_eq!(
                schema_failure(source),
                (line, message.to_string()),
                "{source}"
            );
        }
    }
}
