"""A control for BENCHMARKS.md: what SQLite alone does with order-listener's schema.

Inserts N events (1.5 KB bodies, random UUID eventIds, orders spread over 100,000) and upserts
their order rows, BATCH per BEGIN IMMEDIATE ... COMMIT, in WAL mode with synchronous = FULL, one
thread, no HTTP; prints events/s and bytes written to disk per event (/proc/self/io).

Usage: python3 bench/sqlite-control.py [page=4096] [ckpt=500] [worow=False] [n=60000]
                                        [batch=64] [idx_update=True] [idx_state=True]
"""
import sqlite3, os, sys, time, uuid, random, json
def run(page=4096, ckpt=500, worow=False, n=60000, batch=64, fold=400, body=1500, idx_update=True, idx_state=True):
    path='/tmp/sqlite-control.db'
    for f in [path, path+'-wal', path+'-shm']:
        if os.path.exists(f): os.remove(f)
    c=sqlite3.connect(path, isolation_level=None)
    c.execute(f'PRAGMA page_size={page}')
    c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA synchronous=FULL'); c.execute(f'PRAGMA wal_autocheckpoint={ckpt}'); c.execute('PRAGMA cache_size=-32768')
    c.executescript('''
    CREATE TABLE events (sequence INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL, event_date TEXT NOT NULL, event_date_us INTEGER NOT NULL, order_id TEXT, received_at_us INTEGER NOT NULL, sender TEXT, client TEXT, facts TEXT, body BLOB NOT NULL, facts_c BLOB) STRICT;
    CREATE INDEX events_by_order ON events (order_id, event_date_us) WHERE order_id IS NOT NULL;
    CREATE INDEX events_by_received ON events (received_at_us);
    ''')
    c.execute('CREATE TABLE service_orders (id TEXT PRIMARY KEY, state TEXT, external_id TEXT, order_date TEXT, completion_date_time TEXT, item_count INTEGER NOT NULL, anomaly_count INTEGER NOT NULL, event_count INTEGER NOT NULL, last_event_date_us INTEGER NOT NULL, updated_at_us INTEGER NOT NULL, fold BLOB)' + (' WITHOUT ROWID' if worow else ''))
    if idx_state: c.execute('CREATE INDEX service_orders_by_state ON service_orders (state, id)')
    if idx_update: c.execute('CREATE INDEX service_orders_by_update ON service_orders (updated_at_us)')
    io0=open('/proc/self/io').read()
    w0=int([l for l in io0.split('\n') if l.startswith('write_bytes')][0].split()[1])
    b=os.urandom(body); fb=os.urandom(fold)
    t=time.time(); now=int(t*1e6)
    for i in range(0,n,batch):
        c.execute('BEGIN IMMEDIATE')
        for j in range(batch):
            eid=str(uuid.uuid4()); oid='SO-%06d'%random.randrange(100000); now+=10
            c.execute('INSERT INTO events (event_id,event_type,event_date,event_date_us,order_id,received_at_us,sender,client,facts_c,body) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING',(eid,'ServiceOrderStateChangeNotification','2019-03-25T08:08:56.310Z',now,oid,now,'127.0.0.1',None,b'\x01'*60,b))
            r=c.execute('SELECT fold FROM service_orders WHERE id=?',(oid,)).fetchone()
            c.execute('INSERT INTO service_orders (id,state,external_id,order_date,completion_date_time,item_count,anomaly_count,event_count,last_event_date_us,updated_at_us,fold) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET state=excluded.state, external_id=excluded.external_id, order_date=excluded.order_date, completion_date_time=excluded.completion_date_time, item_count=excluded.item_count, anomaly_count=excluded.anomaly_count, event_count=excluded.event_count, last_event_date_us=excluded.last_event_date_us, updated_at_us=excluded.updated_at_us, fold=excluded.fold',(oid,'inProgress','ext','x',None,2,0,1,now,now,fb))
        c.execute('COMMIT')
    dt=time.time()-t
    io1=open('/proc/self/io').read()
    w1=int([l for l in io1.split('\n') if l.startswith('write_bytes')][0].split()[1])
    rs=os.times()
    print(f"page={page} ckpt={ckpt} worow={worow} fold={fold} upd={idx_update} st={idx_state}: {n/dt:8.0f}/s  disk {(w1-w0)/n/1024:6.1f} KiB/event  size {os.path.getsize(path)/n:6.0f} B/event  sys {rs.system:.1f}s user {rs.user:.1f}s", flush=True)
    c.close()
import itertools
args=dict(a.split('=') for a in sys.argv[1:])
run(**{k:(int(v) if v.isdigit() else v=='True') for k,v in args.items()})
