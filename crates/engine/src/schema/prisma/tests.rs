//! Tests of the Prisma reader: exact catalogs, every type mapping, every error.

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
        ("DateTime @db.Time(3)", crate::schema::MYSQL_TIME),
        ("DateTime @db.Time", crate::schema::MYSQL_TIME),
        ("Json @db.Json", DataType::Utf8),
        ("Bytes @db.Blob", DataType::Binary),
        ("Bytes @db.LongBlob", DataType::Binary),
        ("Bytes @db.MediumBlob", DataType::Binary),
        ("Bytes @db.TinyBlob", DataType::Binary),
        ("Bytes @db.Binary(16)", DataType::Binary),
        ("Bytes @db.VarBinary(255)", DataType::Binary),
        ("Bytes @db.Bit(8)", DataType::FixedSizeBinary(1)),
        ("Bytes @db.Bit(16)", DataType::FixedSizeBinary(2)),
        ("Bytes @db.Bit(64)", DataType::FixedSizeBinary(8)),
        ("Boolean @db.TinyInt", DataType::Boolean),
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

/// Prisma has no SET type (prisma/orm#10620): `Unsupported("set(…)")` is read as the text
/// Debezium sends; other unsupported MySQL types are refused naming the field.
#[test]
fn mysql_set_is_text_and_geometry_is_refused() {
    let schema = |ty: &str| {
        format!(
            "datasource db {{\n  provider = \"mysql\"\n}}\nmodel T {{\n  id Int @id\n  s {ty}\n}}\n"
        )
    };
    let columns = &parse(&schema("Unsupported(\"set('a','b')\")?"))
        .unwrap()
        .tables[0]
        .columns;
    assert_eq!(columns[1].data_type, DataType::Utf8);
    let expected = (
        "T".to_string(),
        "s".to_string(),
        "type Unsupported(\"geometry\") is not supported".to_string(),
    );
    assert_eq!(
        unsupported_failure(&schema("Unsupported(\"geometry\")?")),
        expected
    );
    assert!(parse(&schema("Bytes? @db.Bit(65)")).is_err());
    let one_bit = unsupported_failure(&schema("Bytes? @db.Bit(1)")).2;
    assert!(one_bit.contains("Boolean @db.Bit(1)"), "{one_bit}");
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
        let source = format!("datasource db {{\n  provider = \"{name}\"\n  url = env(\"X\")\n}}\n");
        let message =
            format!("provider `{name}` is not supported: Eddy reads postgresql and mysql schemas");
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
    let two =
        "datasource a {\n  provider = \"mysql\"\n}\ndatasource b {\n  provider = \"mysql\"\n}\n";
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
