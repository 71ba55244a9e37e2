/* The demo "mission" database: used by scripts/demo.sh and by the console end-to-end test. */
create table orders (id integer primary key, customer_id integer, amount real, updated_at text);
create table customers (id integer primary key, name text, updated_at text);
create table products (id integer primary key, sku text, price real);
insert into customers values (1, 'Ada', '2026-01-01 08:00:00'), (2, 'Grace', '2026-01-01 09:00:00');
insert into orders values
  (1, 1, 19.90, '2026-01-02 10:00:00'), (2, 2, 5.00, '2026-01-02 11:00:00'), (3, 1, 42.00, '2026-01-03 12:00:00');
insert into products values (1, 'SKU-1', 9.5), (2, 'SKU-2', 12.0);
