// The MongoDB entry's client: the official MongoDB Node.js driver (NODE_PATH points at it)
// against the server at the URL in argv[2]. Prints one JSON line with what it saw.
'use strict';
const { MongoClient } = require('mongodb');

async function main() {
  const client = new MongoClient(process.argv[2], { serverSelectionTimeoutMS: 30000 });
  await client.connect();
  try {
    const db = client.db('compat');
    const items = db.collection('items');
    await items.drop().catch(() => {});
    const docs = Array.from({ length: 1000 }, (_, k) => ({ _id: k + 1, i: k + 1, name: `item-${k + 1}` }));
    const inserted = await items.insertMany(docs);
    const top = await items.find({ i: { $gte: 500 } }).sort({ i: -1 }).limit(5).toArray();
    const updated = await items.updateMany({ i: { $lte: 10 } }, { $set: { name: 'changed' } });
    const [total] = await items.aggregate([{ $group: { _id: null, sum: { $sum: '$i' } } }]).toArray();
    const info = await db.admin().command({ buildInfo: 1 });
    console.log(JSON.stringify({
      inserted: inserted.insertedCount,
      count: await items.countDocuments({}),
      sum: total.sum,
      modified: updated.modifiedCount,
      top: top.map((d) => d.i),
      server: info.version,
    }));
  } finally {
    await client.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
