import { migrate } from '../src/lib/migrations.ts'

const url = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/recsvc'
const applied = await migrate(url, { log: (m) => console.log(m) })
console.log(applied.length ? `applied ${applied.length} migration(s)` : 'schema up to date')
