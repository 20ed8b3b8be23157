//! A fresh external database per test, on the shared PostgreSQL or MariaDB server: customers
//! (a name with a double quote, a backtick and a space), their orders, and the orders' lines.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use bunker::connectors::external::{Engine, Target};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, MySqlConnection, PgConnection};

use crate::common::pg_admin_url;

/// The customers' table, as the catalogue names it.
pub const CUSTOMERS: &str = "cust\"o`mers x";

/// Where MariaDB tests connect as an administrator (the server must be up).
fn mysql_admin_url() -> String {
    std::env::var("BUNKER_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".to_owned())
}

/// A scratch database, dropped (with the users made for it) when the value is.
pub struct Scratch {
    pub engine: Engine,
    pub name: String,
    users: Vec<String>,
}

/// An administrator's connection to a scratch database.
enum Admin {
    Postgres(PgConnection),
    MySql(MySqlConnection),
}

impl Admin {
    async fn open(engine: Engine, database: Option<&str>) -> Admin {
        match engine {
            Engine::Postgres => {
                let mut options = PgConnectOptions::from_str(&pg_admin_url()).expect("postgres URL");
                if let Some(database) = database {
                    options = options.database(database);
                }
                Admin::Postgres(options.disable_statement_logging().connect().await.expect("connect to postgres"))
            }
            Engine::MySql => {
                let mut options = MySqlConnectOptions::from_str(&mysql_admin_url()).expect("mysql URL");
                if let Some(database) = database {
                    options = options.database(database);
                }
                Admin::MySql(options.disable_statement_logging().connect().await.expect("connect to mariadb"))
            }
        }
    }

    async fn exec(&mut self, sql: &str) {
        match self {
            Admin::Postgres(conn) => conn.execute(sql).await.map(drop),
            Admin::MySql(conn) => conn.execute(sql).await.map(drop),
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    async fn ids(&mut self, sql: &str) -> Vec<i64> {
        let ids: Vec<i32> = match self {
            Admin::Postgres(conn) => sqlx::query_scalar(sql).fetch_all(conn).await,
            Admin::MySql(conn) => sqlx::query_scalar(sql).fetch_all(conn).await,
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
        let mut ids: Vec<i64> = ids.into_iter().map(i64::from).collect();
        ids.sort_unstable();
        ids
    }

    async fn close(self) {
        let _ = match self {
            Admin::Postgres(conn) => conn.close().await,
            Admin::MySql(conn) => conn.close().await,
        };
    }
}

impl Scratch {
    /// A fresh database with the three tables and their rows: customers 1 and 3 are the
    /// subject's (by email, and by customer number 4243), 2 a stranger's; orders 10 and 11 are
    /// the subject's, 20 the stranger's; line 200 belongs to order 20.
    pub async fn new(engine: Engine) -> Scratch {
        let name = format!("conn_{}", uuid::Uuid::new_v4().simple());
        let mut admin = Admin::open(engine, None).await;
        admin.exec(&format!("CREATE DATABASE {name}")).await;
        admin.close().await;
        let scratch = Scratch { engine, name, users: Vec::new() };
        let c = scratch.quoted(CUSTOMERS);
        let schema = match engine {
            Engine::Postgres => [
                format!(
                    "CREATE TABLE {c} (id integer PRIMARY KEY, email text UNIQUE, phone text, login text NOT NULL, \
                     customer_no integer)"
                ),
                format!(
                    "CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer CONSTRAINT orders_customer \
                     REFERENCES {c}(id), item text)"
                ),
                "CREATE TABLE order_lines (id integer PRIMARY KEY, order_id integer CONSTRAINT lines_order \
                 REFERENCES orders(id), qty integer)"
                    .to_owned(),
            ],
            Engine::MySql => [
                format!(
                    "CREATE TABLE {c} (id INT PRIMARY KEY, email VARCHAR(255) UNIQUE, phone VARCHAR(64), \
                     login VARCHAR(64) NOT NULL, customer_no INT) ENGINE=InnoDB"
                ),
                format!(
                    "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, item VARCHAR(64), \
                     CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES {c}(id)) ENGINE=InnoDB"
                ),
                "CREATE TABLE order_lines (id INT PRIMARY KEY, order_id INT, qty INT, \
                 CONSTRAINT lines_order FOREIGN KEY (order_id) REFERENCES orders(id)) ENGINE=InnoDB"
                    .to_owned(),
            ],
        };
        let rows = [
            format!(
                "INSERT INTO {c} (id, email, phone, login, customer_no) VALUES \
                 (1, 'sub@example.com', '+1 555 0100', 'subject', 4242), \
                 (2, 'other@example.com', '+1 555 0199', 'stranger', 7), \
                 (3, 'sub.alt@example.com', NULL, 'subject2', 4243)"
            ),
            "INSERT INTO orders (id, customer_id, item) VALUES (10, 1, 'book'), (11, 3, 'pen'), (20, 2, 'lamp')"
                .to_owned(),
            "INSERT INTO order_lines (id, order_id, qty) VALUES (200, 20, 1)".to_owned(),
        ];
        for sql in schema.iter().chain(&rows) {
            scratch.exec(sql).await;
        }
        scratch
    }

    /// `name` quoted for this engine (the test's own quoting, independent of the library's).
    pub fn quoted(&self, name: &str) -> String {
        match self.engine {
            Engine::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Engine::MySql => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// The library's target for this database, as the server's administrator.
    pub fn target(&self) -> Target {
        let (username, port) = match self.engine {
            Engine::Postgres => {
                let options = PgConnectOptions::from_str(&pg_admin_url()).expect("postgres URL");
                (options.get_username().to_owned(), options.get_port())
            }
            Engine::MySql => {
                let options = MySqlConnectOptions::from_str(&mysql_admin_url()).expect("mysql URL");
                (options.get_username().to_owned(), options.get_port())
            }
        };
        Target {
            engine: self.engine,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            database: self.name.clone(),
            username,
            // Trust authentication on the shared PostgreSQL ignores it; MariaDB's root has none.
            password: match self.engine {
                Engine::Postgres => "ignored-by-trust".into(),
                Engine::MySql => "".into(),
            },
        }
    }

    /// Runs `sql` in the scratch database, as its administrator.
    pub async fn exec(&self, sql: &str) {
        let mut admin = Admin::open(self.engine, Some(&self.name)).await;
        admin.exec(sql).await;
        admin.close().await;
    }

    /// The ids `sql` selects, sorted.
    pub async fn ids(&self, sql: &str) -> Vec<i64> {
        let mut admin = Admin::open(self.engine, Some(&self.name)).await;
        let ids = admin.ids(sql).await;
        admin.close().await;
        ids
    }

    /// The ids of every table: customers, orders, order lines.
    pub async fn all_ids(&self) -> [Vec<i64>; 3] {
        let c = self.quoted(CUSTOMERS);
        [
            self.ids(&format!("SELECT id FROM {c}")).await,
            self.ids("SELECT id FROM orders").await,
            self.ids("SELECT id FROM order_lines").await,
        ]
    }

    /// Holds an exclusive lock on `table` until the answer is dropped: reading it then waits.
    pub async fn lock(&self, table: &str) -> Held {
        let mut admin = Admin::open(self.engine, Some(&self.name)).await;
        let quoted = self.quoted(table);
        match self.engine {
            Engine::Postgres => admin.exec(&format!("BEGIN; LOCK TABLE {quoted} IN ACCESS EXCLUSIVE MODE")).await,
            Engine::MySql => admin.exec(&format!("LOCK TABLES {quoted} WRITE")).await,
        }
        Held { _admin: admin }
    }

    /// A MariaDB user allowed into this database with `password`, dropped with it.
    pub async fn mysql_user(&mut self, password: &str) -> String {
        let user = format!("u_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut admin = Admin::open(Engine::MySql, None).await;
        for host in ["%", "localhost", "127.0.0.1"] {
            admin.exec(&format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")).await;
            admin.exec(&format!("GRANT ALL ON {}.* TO '{user}'@'{host}'", self.name)).await;
        }
        admin.close().await;
        self.users.push(user.clone());
        user
    }
}

/// A lock held by an administrator's connection; dropping it closes the connection.
pub struct Held {
    _admin: Admin,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (engine, name, users) = (self.engine, self.name.clone(), std::mem::take(&mut self.users));
        // Dropped inside the test's runtime (or while panicking): clean up on a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let mut admin = Admin::open(engine, None).await;
                match engine {
                    Engine::Postgres => admin.exec(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await,
                    Engine::MySql => admin.exec(&format!("DROP DATABASE IF EXISTS {name}")).await,
                }
                for user in users {
                    for host in ["%", "localhost", "127.0.0.1"] {
                        admin.exec(&format!("DROP USER IF EXISTS '{user}'@'{host}'")).await;
                    }
                }
                admin.close().await;
            });
        });
        let _ = cleanup.join();
    }
}
