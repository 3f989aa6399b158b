/** The schema every test/tables file starts from (also used by the PostgREST comparison). */
export const FIXTURE_SQL = `
create table authors (id serial primary key, name text not null, country text, born date);
create table books (
  id serial primary key, title text not null, author_id int references authors(id),
  pages int, published date, labels text[], meta jsonb, price numeric(8,2), in_print boolean default true
);
create table profiles (author_id int primary key references authors(id), bio text);
create table genres (id int primary key, name text not null unique);
create table book_genres (book_id int references books(id), genre_id int references genres(id), primary key (book_id, genre_id));
create table people (id int primary key, name text not null);
create table messages (id int primary key, sender_id int not null references people(id), receiver_id int not null references people(id), body text);
create table rooms (id int primary key, name text, booked int4range);
create table docs (id int primary key, body text, tsv tsvector generated always as (to_tsvector('english', body)) stored);
create table counters (id serial primary key, label text unique, n int not null default 0);
create table events (id bigint generated always as identity primary key, kind text not null default 'note', payload jsonb, at timestamptz default '2024-01-01T00:00:00Z');
create view books_view as select id, title, author_id, pages from books;
create view authors_view as select id, name from authors;

insert into authors (name, country, born) values
  ('Ursula K. Le Guin', 'US', '1929-10-21'), ('Stanislaw Lem', 'PL', '1921-09-12'),
  ('Octavia E. Butler', 'US', '1947-06-22'), ('Anonymous', null, null);
insert into books (title, author_id, pages, published, labels, meta, price, in_print) values
  ('A Wizard of Earthsea', 1, 183, '1968-11-01', '{fantasy,classic}', '{"series": {"name": "Earthsea", "n": 1}, "award": null}', 9.99, true),
  ('The Left Hand of Darkness', 1, 304, '1969-03-01', '{scifi,classic}', '{"series": {"name": "Hainish", "n": 4}}', 12.50, true),
  ('Solaris', 2, 204, '1961-06-01', '{scifi}', '{"translated": true}', 11.00, false),
  ('The Cyberiad', 2, 295, '1965-01-01', '{scifi,humor}', null, null, true),
  ('Kindred', 3, 264, '1979-06-01', '{scifi,historical}', '{"award": "none"}', 14.00, true),
  ('Untitled draft', null, null, null, '{}', '{}', null, false);
insert into profiles values (1, 'Wrote Earthsea'), (2, 'Polish author');
insert into genres values (1, 'fantasy'), (2, 'science fiction'), (3, 'satire');
insert into book_genres values (1, 1), (2, 2), (3, 2), (4, 2), (4, 3), (5, 2);
insert into people values (1, 'alice'), (2, 'bob'), (3, 'carol');
insert into messages values (1, 1, 2, 'hi bob'), (2, 2, 1, 'hi alice'), (3, 1, 3, 'hello carol');
insert into rooms values (1, 'small', '[1,5)'), (2, 'large', '[10,20)'), (3, 'none', null);
insert into docs (id, body) values (1, 'The quick brown fox jumps'), (2, 'A lazy dog sleeps all day'), (3, 'Foxes and dogs are friends');
insert into counters (label, n) values ('a', 1), ('b', 2);

create table secrets (id serial primary key, owner text not null default current_setting('request.jwt.claims', true)::json->>'sub', body text);
alter table secrets enable row level security;
create policy own on secrets using (owner = current_setting('request.jwt.claims', true)::json->>'sub')
  with check (owner = current_setting('request.jwt.claims', true)::json->>'sub');
insert into secrets (owner, body) values ('u1', 'mine'), ('u2', 'theirs');
create table private_notes (id int primary key, note text);

grant select on all tables in schema public to anon;
grant select, insert, update, delete on all tables in schema public to authenticated;
grant usage on all sequences in schema public to anon, authenticated;
grant insert, update, delete on books, authors, counters, events, people to anon;
revoke all on private_notes from anon;
revoke all on secrets from anon;
grant select (id, name) on people to anon;
revoke select on people from anon;
grant select (id, name) on people to anon;
`;
