export { AdminData } from './Data.js';
export { AdminModels } from './Models.js';
export { AdminOverview } from './Overview.js';
export { AdminPeople } from './People.js';
export { AdminScreening } from './Screening.js';
export { AdminSettings } from './Settings.js';
export { AdminTrain } from './Train.js';
