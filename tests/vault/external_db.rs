//! The company's own databases a connector reaches, for tests: a fresh database on the machine's
//! PostgreSQL or MariaDB (127.0.0.1), dropped afterwards, with a customers table whose name holds
//! quotes, an orders table referencing it, and a stranger's rows beside the subject's.

use std::process::Command;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    MariaDb,
}

impl Engine {
    pub const BOTH: [Engine; 2] = [Engine::Postgres, Engine::MariaDb];

    /// The `connectortype` naming it.
    pub fn connectortype(self) -> &'static str {
        match self {
            Engine::Postgres => "postgresql",
            Engine::MariaDb => "mysql",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::MariaDb => 3306,
        }
    }

    pub fn user(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::MariaDb => "root",
        }
    }
}

/// The customers table's name: quotes of both kinds and a space, which only quoting survives.
pub const CUSTOMERS: &str = "cust\"o'mers list";
/// The table referencing it.
pub const ORDERS: &str = "orders";

/// The subject's e-mail, login and phone in the external tables (and in the vault).
pub const ANN_EMAIL: &str = "ann@example.com";
pub const ANN_LOGIN: &str = "ann";
/// A stranger's e-mail.
pub const BOB_EMAIL: &str = "bob@example.com";

/// A fresh external database.
pub struct ExternalDb {
    pub engine: Engine,
    pub name: String,
}

impl ExternalDb {
    /// An empty database.
    pub fn create(engine: Engine) -> ExternalDb {
        let name = format!("ext_{}", uuid::Uuid::new_v4().simple());
        let db = ExternalDb { engine, name };
        db.admin(&format!("CREATE DATABASE {}", db.name));
        db
    }

    /// A database with the customers and orders tables: Ann (id 1) with two orders, Bob (id 2)
    /// with one.
    pub fn with_customers(engine: Engine) -> ExternalDb {
        let db = ExternalDb::create(engine);
        let customers = db.quote(CUSTOMERS);
        db.exec(&format!(
            "CREATE TABLE {customers} (id INTEGER PRIMARY KEY, email VARCHAR(200), login VARCHAR(100) NOT NULL, \
             phone VARCHAR(50), fullname VARCHAR(200));
             CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES {customers} (id), \
             item VARCHAR(100));
             INSERT INTO {customers} VALUES (1, '{ANN_EMAIL}', '{ANN_LOGIN}', '+15550001', 'Ann Example'), \
             (2, '{BOB_EMAIL}', 'bob', '+15550002', 'Bob Stranger');
             INSERT INTO orders VALUES (10, 1, 'book'), (11, 1, 'pen'), (12, 2, 'lamp');"
        ));
        db
    }

    /// `name` quoted for this engine.
    pub fn quote(&self, name: &str) -> String {
        match self.engine {
            Engine::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Engine::MariaDb => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// Runs statements in this database.
    pub fn exec(&self, sql: &str) {
        let output = self.client(Some(&self.name), sql);
        assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// The integer a query answers.
    pub fn count(&self, sql: &str) -> i64 {
        let output = self.client(Some(&self.name), sql);
        assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().parse().expect("an integer")
    }

    /// Rows of the customers table with this e-mail.
    pub fn customers_with(&self, email: &str) -> i64 {
        self.count(&format!("SELECT COUNT(*) FROM {} WHERE email = '{email}'", self.quote(CUSTOMERS)))
    }

    /// Orders of the customer `id`.
    pub fn orders_of(&self, id: i64) -> i64 {
        self.count(&format!("SELECT COUNT(*) FROM orders WHERE customer_id = {id}"))
    }

    /// The connector fields reaching this database (password `password`).
    pub fn fields(&self, password: &str) -> serde_json::Value {
        serde_json::json!({
            "connectortype": self.engine.connectortype(),
            "dbhost": "127.0.0.1",
            "dbport": self.engine.port().to_string(),
            "dbname": self.name,
            "tablename": CUSTOMERS,
            "username": self.engine.user(),
            "apikey": password,
        })
    }

    fn admin(&self, sql: &str) {
        let output = self.client(None, sql);
        assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
    }

    fn client(&self, database: Option<&str>, sql: &str) -> std::process::Output {
        match self.engine {
            Engine::Postgres => {
                let url = crate::common::pg_admin_url();
                let url = match database {
                    Some(db) => format!("{}/{db}", url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base)),
                    None => url,
                };
                Command::new("psql").args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-qtAc", sql]).output().expect("psql")
            }
            Engine::MariaDb => {
                let mut command = Command::new("mariadb");
                command.args(["-uroot", "-h127.0.0.1", "-P3306", "-N", "-s"]);
                if let Some(db) = database {
                    command.arg(db);
                }
                command.args(["-e", sql]).output().expect("mariadb")
            }
        }
    }
}

impl Drop for ExternalDb {
    fn drop(&mut self) {
        let sql = match self.engine {
            Engine::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Engine::MariaDb => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        let _ = self.client(None, &sql);
    }
}
